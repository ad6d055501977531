"""Accounts: registration, login, rotating refresh tokens, logout, guests and deletion.

* **Passwords** are hashed with argon2id (:mod:`chatio.accounts.passwords`); a login checks one even for an
  unknown username, so the answer's timing does not tell which usernames exist.
* **Login** returns a short-lived access token (JWT, :mod:`chatio.accounts.tokens`) and a refresh token. The
  refresh token is stored as a hash and rotates: each refresh redeems it once and returns a new pair of the
  same session (token *family*). A refresh token presented a second time was copied: the whole family is
  revoked, and the sockets of that session are closed.
* **Access tokens** are checked against the accounts on every use (two lookups, at once): a deleted
  account's tokens and a logged-out or revoked session's tokens stop working at once, on every process
  (the store is shared); the sockets they opened before are closed on every process (the listeners
  publish a signal; while Redis is away, other processes close them when their token expires).
* **Guests** (``CHATIO_ALLOW_GUESTS``) name themselves; a registered or deleted username is never a guest's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from chatio import errors, schemas
from chatio.accounts.identity import AuthError, Identity
from chatio.accounts.passwords import Passwords
from chatio.accounts.tokens import (
    AccessTokens,
    TokenError,
    new_refresh_token,
    new_session_id,
    refresh_token_hash,
)
from chatio.config import Settings
from chatio.errors import ChatError
from chatio.store import Conflict, Store, User, now_ms
from chatio.store.accounts import AccountStore, Redemption, RefreshToken

log = logging.getLogger(__name__)

#: Told the user id of a deleted user, or the session id of an ended session.
Listener = Callable[[str], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    """What a login, a refresh or a guest sign-in hands out. Guests get no refresh token."""

    user: User
    access_token: str
    expires_at: float
    refresh_token: str | None = None
    refresh_expires_at: float | None = None


class AccountService:
    """See the module docstring. Every coroutine raises :class:`ChatError` for a refused request."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        accounts: AccountStore,
        passwords: Passwords,
        tokens: AccessTokens,
    ) -> None:
        self.settings = settings
        self.store = store
        self.accounts = accounts
        self.passwords = passwords
        self.tokens = tokens
        #: Called after a user was deleted (close their connections, forget their memberships).
        self.on_deleted: list[Listener] = []
        #: Called after a session was logged out or revoked (close its connections).
        self.on_session_ended: list[Listener] = []

    # --- registration and login ------------------------------------------------------------------------

    async def register(
        self, username: str, password: str | None, display_name: str, email: str | None
    ) -> User:
        """A user with an account (``password``), or without one a *guest profile*: a guest user with a
        display name and e-mail address that signs in as a guest does (by name, no password). Guest
        profiles exist only where guests are allowed."""
        if password is None and not self.settings.allow_guests:
            raise ChatError(
                errors.INVALID_PAYLOAD,
                "password: Missing data for required field (this server does not allow guests, so every "
                "user needs a password)",
                field="password",
            )
        password_hash = None if password is None else await self.passwords.hash(password)
        try:
            user = await self.store.create_user(username, display_name, email, guest=password_hash is None)
        except Conflict:
            raise ChatError(errors.CONFLICT, f"username {username!r} is taken", field="username") from None
        if password_hash is not None:
            await self.accounts.create_account(user.id, password_hash)
        return user

    async def login(self, username: str, password: str) -> Grant:
        user = await self.store.find_user(username)
        account = None if user is None or user.guest else await self.accounts.get_account(user.id)
        if not await self.passwords.verify(None if account is None else account.password_hash, password):
            raise ChatError(errors.UNAUTHORIZED, "wrong username or password")
        assert user is not None and account is not None
        if self.passwords.needs_rehash(account.password_hash):
            await self.accounts.set_password_hash(user.id, await self.passwords.hash(password))
        return await self._grant(user, new_session_id())

    async def refresh(self, refresh_token: str) -> Grant:
        """Redeem a refresh token for a new pair of the same session (see the module docstring)."""
        redeemed = await self.accounts.redeem_refresh_token(refresh_token_hash(refresh_token), now_ms())
        token = redeemed.token
        if redeemed.outcome is Redemption.REUSED and token is not None:
            log.warning("refresh token reused: revoking session %s of user %s", token.family, token.user_id)
            await self.end_session(token.family)
            raise ChatError(errors.UNAUTHORIZED, "refresh token reused: the session is revoked, log in again")
        if redeemed.outcome is not Redemption.OK or token is None:
            reason = {
                Redemption.EXPIRED: "refresh token expired",
                Redemption.REVOKED: "the session was logged out or revoked",
            }.get(redeemed.outcome, "unknown refresh token")
            raise ChatError(errors.UNAUTHORIZED, f"{reason}: log in again")
        user = await self.store.get_user(token.user_id)
        if user is None or await self.accounts.get_account(token.user_id) is None:
            raise ChatError(errors.UNAUTHORIZED, "the account no longer exists")
        return await self._grant(user, token.family)

    async def logout(self, refresh_token: str) -> None:
        """End the session the refresh token belongs to, whichever token of it is shown."""
        redeemed = await self.accounts.redeem_refresh_token(refresh_token_hash(refresh_token), now_ms())
        if redeemed.token is None:
            raise ChatError(errors.UNAUTHORIZED, "unknown refresh token")
        await self.end_session(redeemed.token.family)

    async def end_session(self, session: str) -> None:
        await self.accounts.revoke_family(session)
        for listener in self.on_session_ended:
            await listener(session)

    async def _grant(self, user: User, session: str) -> Grant:
        access, expires_at = self.tokens.issue(user.id, user.username, guest=False, session=session)
        refresh = new_refresh_token()
        now = now_ms()
        refresh_expires = now + round(self.settings.refresh_token_ttl_seconds * 1000)
        await self.accounts.add_refresh_token(
            RefreshToken(refresh_token_hash(refresh), user.id, session, now, refresh_expires)
        )
        return Grant(user, access, expires_at, refresh, refresh_expires / 1000)

    # --- guests ----------------------------------------------------------------------------------------

    async def guest(self, username: str) -> User:
        """The guest user named ``username``, created on first use."""
        if not self.settings.allow_guests:
            raise ChatError(errors.FORBIDDEN, "this server does not allow guests: register and log in")
        user = await self.store.find_user(username)
        if user is None:
            try:
                user = await self.store.create_user(username, username, guest=True)
            except Conflict:
                user = await self.store.find_user(username)
        if user is None:  # pragma: no cover - a concurrent create that vanished
            raise ChatError(errors.UNAVAILABLE, "username is not available, try again")
        if not user.guest:
            raise ChatError(
                errors.UNAUTHORIZED, f"username {username!r} is registered: log in", field="username"
            )
        if await self.accounts.is_deleted(user.id):
            raise ChatError(errors.FORBIDDEN, f"username {username!r} was deleted", field="username")
        return user

    async def guest_identity(self, name: str) -> Identity:
        """A guest named by username or user id, for a REST call without a token where guests are allowed
        (a guest has no secret: naming it is all a guest's sign-in ever is)."""
        if not self.settings.allow_guests:
            raise ChatError(
                errors.UNAUTHORIZED,
                "send Authorization: Bearer <access token> (this server does not allow guests)",
            )
        known = await self.store.get_user(name)
        user = await self.guest(name if known is None else known.username)
        return Identity(user.id, user.username, True)

    async def guest_grant(self, username: str) -> Grant:
        user = await self.guest(username)
        access, expires_at = self.tokens.issue(user.id, user.username, guest=True, session=None)
        return Grant(user, access, expires_at)

    # --- tokens ----------------------------------------------------------------------------------------

    async def identify(self, access_token: str) -> Identity:
        """The identity an access token stands for, checked against the accounts now."""
        try:
            claims = self.tokens.verify(access_token)
        except TokenError as exc:
            raise ChatError(exc.code, exc.message) from None
        if claims.guest:
            if not self.settings.allow_guests:
                raise ChatError(errors.UNAUTHORIZED, "this server does not allow guests: log in")
            if await self.accounts.is_deleted(claims.user_id):
                raise ChatError(errors.UNAUTHORIZED, "the user was deleted")
            return Identity(claims.user_id, claims.username, True, expires_at=claims.expires_at)
        account, revoked = await asyncio.gather(
            self.accounts.get_account(claims.user_id),
            self.accounts.is_revoked(claims.session) if claims.session is not None else _false(),
        )
        if account is None:
            raise ChatError(errors.UNAUTHORIZED, "the account no longer exists")
        if revoked:
            raise ChatError(errors.UNAUTHORIZED, "the session was logged out or revoked: log in again")
        return Identity(
            claims.user_id,
            claims.username,
            False,
            admin=account.admin,
            expires_at=claims.expires_at,
            session=claims.session,
        )

    async def renew(self, current: Identity, access_token: str) -> Identity:
        """The identity of a newer access token of ``current``'s user, for a connection that carries on
        with it (``refresh_session``, /ws/chat's REFRESH); ``forbidden`` for another user's token."""
        identity = await self.identify(access_token)
        if identity.user_id != current.user_id:
            raise ChatError(errors.FORBIDDEN, "the token belongs to another user", field="token")
        return identity

    # --- users -----------------------------------------------------------------------------------------

    async def profile(self, name: str) -> User:
        """A user by id, else by username (an id is tried first)."""
        user = await self.store.get_user(name) or await self.store.find_user(name)
        if user is None or await self.accounts.is_deleted(user.id):
            raise ChatError(errors.NOT_FOUND, "no such user")
        return user

    async def delete(self, actor: Identity, user_id: str) -> None:
        """Delete a user: the user themself or an administrator. Their connections are closed."""
        if actor.user_id != user_id and not actor.admin:
            raise ChatError(errors.FORBIDDEN, "only the user themself or an administrator deletes a user")
        if (await self.profile(user_id)).id != user_id:
            raise ChatError(errors.NOT_FOUND, "no such user: delete a user by id")
        await self.accounts.delete_account(user_id)
        log.info("user %s deleted by %s", user_id, actor.user_id)
        for listener in self.on_deleted:
            await listener(user_id)


async def _false() -> bool:
    return False


class TokenAuthenticator:
    """The connect step with accounts: ``auth: {token}``, or ``auth: {username}`` for guests if allowed."""

    def __init__(self, accounts: AccountService) -> None:
        self._accounts = accounts
        self._token = schemas.TokenAuth()
        self._guest = schemas.GuestAuth()

    async def authenticate(self, auth: object) -> Identity:
        try:
            if isinstance(auth, dict) and "token" in auth:
                token = schemas.load(self._token, auth, prefix="auth")["token"]
                return await self._accounts.identify(token)
            if not self._accounts.settings.allow_guests:
                raise ChatError(
                    errors.UNAUTHORIZED,
                    "authentication required: connect with auth: {token} (this server does not allow guests)",
                )
            username = schemas.load(self._guest, auth, prefix="auth")["username"]
            user = await self._accounts.guest(username)
        except ChatError as exc:
            raise AuthError(exc.message, exc.code) from None
        return Identity(user.id, user.username, True)
