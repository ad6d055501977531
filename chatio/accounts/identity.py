"""Who is connecting. The ``Authenticator`` protocol keeps the connect step pluggable; chatio's own is
:class:`~chatio.accounts.service.TokenAuthenticator` (access tokens, and guests where allowed)."""

from __future__ import annotations

import dataclasses
from typing import Protocol


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """The server's idea of who a socket is; fixed at connect, never taken from event payloads."""

    user_id: str
    username: str
    guest: bool = True
    admin: bool = False
    #: When the credential shown at connect expires (Unix seconds); None for one that does not (guests).
    expires_at: float | None = None
    #: The login session (refresh token family) of that credential; None for guests.
    session: str | None = None

    @property
    def expires_at_ms(self) -> int | None:
        """``expires_at`` as the wire gives it (``expiresAt``: Unix milliseconds), or None."""
        return None if self.expires_at is None else round(self.expires_at * 1000)


class AuthError(Exception):
    """The connection is refused; the message reaches the client as ``connect_error`` (with ``code`` in
    its ``data``)."""

    def __init__(self, message: str, code: str = "unauthorized") -> None:
        super().__init__(message)
        self.code = code


class Authenticator(Protocol):
    async def authenticate(self, auth: object) -> Identity:
        """Return the identity for a Socket.IO ``auth`` payload or raise :class:`AuthError`."""
