"""The embedded :class:`~chatio.store.accounts.AccountStore`: this process's memory, lost on exit."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from chatio.store import Conflict, now_ms
from chatio.store.accounts import Account, Redeemed, Redemption, RefreshToken


@dataclasses.dataclass(slots=True)
class _Stored:
    token: RefreshToken
    used: bool = False
    revoked: bool = False


class MemoryAccountStore:
    """Single event loop; no method awaits, so each is atomic."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._deleted: set[str] = set()
        self._tokens: dict[str, _Stored] = {}
        #: Revoked sessions, kept after their tokens expire and are forgotten.
        self._revoked: set[str] = set()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def create_account(self, user_id: str, password_hash: str, *, admin: bool = False) -> Account:
        if user_id in self._accounts:
            raise Conflict(f"user {user_id!r} has an account")
        account = Account(user_id, password_hash, admin, now_ms())
        self._accounts[user_id] = account
        return account

    async def get_account(self, user_id: str) -> Account | None:
        return self._accounts.get(user_id)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        account = self._accounts.get(user_id)
        if account is not None:
            self._accounts[user_id] = dataclasses.replace(account, password_hash=password_hash)

    async def set_admin(self, user_id: str, admin: bool) -> bool:
        account = self._accounts.get(user_id)
        if account is None:
            return False
        self._accounts[user_id] = dataclasses.replace(account, admin=admin)
        return True

    async def delete_account(self, user_id: str) -> None:
        self._accounts.pop(user_id, None)
        self._deleted.add(user_id)
        for key in [key for key, stored in self._tokens.items() if stored.token.user_id == user_id]:
            del self._tokens[key]

    async def is_deleted(self, user_id: str) -> bool:
        return user_id in self._deleted

    async def add_refresh_token(self, token: RefreshToken) -> None:
        self._forget_expired(now_ms())
        self._tokens[token.token_hash] = _Stored(token)

    async def redeem_refresh_token(self, token_hash: str, now: int) -> Redeemed:
        stored = self._tokens.get(token_hash)
        if stored is None:
            return Redeemed(Redemption.UNKNOWN, None)
        if stored.revoked:
            return Redeemed(Redemption.REVOKED, stored.token)
        if stored.used:
            return Redeemed(Redemption.REUSED, stored.token)
        if stored.token.expires_at <= now:
            return Redeemed(Redemption.EXPIRED, stored.token)
        stored.used = True
        return Redeemed(Redemption.OK, stored.token)

    async def revoke_family(self, family: str) -> int:
        return self._revoke(lambda token: token.family == family)

    async def revoke_user(self, user_id: str) -> int:
        return self._revoke(lambda token: token.user_id == user_id)

    async def is_revoked(self, family: str) -> bool:
        return family in self._revoked

    def _revoke(self, chosen: Callable[[RefreshToken], bool]) -> int:
        count = 0
        for stored in self._tokens.values():
            if chosen(stored.token):
                count += not (stored.used or stored.revoked)
                stored.revoked = True
                self._revoked.add(stored.token.family)
        return count

    def _forget_expired(self, now: int) -> None:
        # Like the Mongo TTL index: memory follows the live sessions, not every token ever issued.
        if len(self._tokens) % 1024 == 0:
            for key in [key for key, stored in self._tokens.items() if stored.token.expires_at <= now]:
                del self._tokens[key]
