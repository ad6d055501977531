"""Who is connecting. The ``Authenticator`` protocol keeps the connect step pluggable."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from chatio import schemas
from chatio.errors import ChatError
from chatio.store import Conflict, Store


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """The server's idea of who a socket is; fixed at connect, never taken from event payloads."""

    user_id: str
    username: str
    guest: bool = True


class AuthError(Exception):
    """The connection is refused; the message reaches the client as ``connect_error``."""


class Authenticator(Protocol):
    async def authenticate(self, auth: object) -> Identity:
        """Return the identity for a Socket.IO ``auth`` payload or raise :class:`AuthError`."""


class GuestAuthenticator:
    """Guests name themselves: ``auth: {username}``. The user record is created on first use."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._schema = schemas.GuestAuth()

    async def authenticate(self, auth: object) -> Identity:
        try:
            username = schemas.load(self._schema, auth, prefix="auth")["username"]
        except ChatError as exc:
            raise AuthError(exc.message) from None
        user = await self._store.find_user(username)
        if user is None:
            try:
                user = await self._store.create_user(username, username, guest=True)
            except Conflict:
                user = await self._store.find_user(username)
                if user is None:  # pragma: no cover - deleted between the two calls
                    raise AuthError("username is not available, try again") from None
        return Identity(user.id, user.username, user.guest)
