"""How connections end with their credential (docs/protocol.md, ``disconnect_reason``): when their access
token expires, and on every process when their account is deleted or their login session is logged out or
revoked (the account service's listeners publish a signal; each process's :class:`Endings` applies it).
Socket.IO and ``/ws/chat`` connections alike: both are the chat core's connections, and a plain client
hears ``disconnect_reason`` as a close frame.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from chatio.accounts.expiry import ExpiryClock
from chatio.chat.service import ChatService

#: The signals (and ``disconnect_reason`` codes) that end a user's or a session's connections everywhere.
ACCOUNT_DELETED: Final = "account_deleted"
SESSION_ENDED: Final = "session_ended"
TOKEN_EXPIRED: Final = "token_expired"

#: ``end(sid, code, message)``: tell the connection why, then end it (the namespace's).
End = Callable[[str, str, str], Awaitable[None]]


def account_deleted(user_id: str) -> dict[str, Any]:
    """The signal that closes every connection of a deleted user, on every process."""
    return {"action": ACCOUNT_DELETED, "userId": user_id}


def session_ended(session: str) -> dict[str, Any]:
    """The signal that closes every connection of a logged-out or revoked session, on every process."""
    return {"action": SESSION_ENDED, "session": session}


class Endings:
    """This process's part: the expiry clock of its connections, and the signals it applies to them."""

    def __init__(self, service: ChatService, end: End) -> None:
        self._service = service
        self._end = end
        self.expiry = ExpiryClock(self._expired)

    async def apply(self, signal: dict[str, Any]) -> None:
        """Carry out a signal (from this or another process): :func:`account_deleted` and
        :func:`session_ended` end this process's connections of that user or session; others are not ours."""
        action = signal.get("action")
        if action == ACCOUNT_DELETED and isinstance(user_id := signal.get("userId"), str):
            await self.end_user(user_id)
        elif action == SESSION_ENDED and isinstance(session := signal.get("session"), str):
            await self.end_session(session)

    async def end_user(self, user_id: str) -> None:
        """Close this process's connections of a deleted user."""
        for sid in self._service.sids():
            if self._service.connection(sid).identity.user_id == user_id:
                await self._end(sid, ACCOUNT_DELETED, "your account was deleted")

    async def end_session(self, session: str) -> None:
        """Close this process's connections of a logged-out or revoked session."""
        for sid in self._service.sids():
            if self._service.connection(sid).identity.session == session:
                await self._end(sid, SESSION_ENDED, "you were logged out; log in again")

    async def _expired(self, sid: str) -> None:
        if sid in self._service.sids():
            await self._end(sid, TOKEN_EXPIRED, "your access token expired; refresh it and reconnect")

    def close(self) -> None:
        """Stop the expiry clock: the end of the application's lifetime."""
        self.expiry.close()
