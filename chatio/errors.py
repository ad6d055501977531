"""The one error type the core raises, with the wire codes of docs/protocol.md."""

from __future__ import annotations

from typing import Any, Final

INVALID_PAYLOAD: Final = "invalid_payload"
UNKNOWN_EVENT: Final = "unknown_event"
NOT_IN_ROOM: Final = "not_in_room"
ROOM_NOT_FOUND: Final = "room_not_found"
ROOM_FULL: Final = "room_full"
TOO_MANY_ROOMS: Final = "too_many_rooms"
RATE_LIMITED: Final = "rate_limited"
UNAVAILABLE: Final = "unavailable"
SHUTTING_DOWN: Final = "shutting_down"
NOT_FOUND: Final = "not_found"
CONFLICT: Final = "conflict"
UNAUTHORIZED: Final = "unauthorized"
TOKEN_EXPIRED: Final = "token_expired"
FORBIDDEN: Final = "forbidden"
BANNED: Final = "banned"
MUTED: Final = "muted"
INTERNAL: Final = "internal"


class ChatError(Exception):
    """A refused command. ``as_wire()`` is the ``error`` object of an ack or a REST body."""

    def __init__(self, code: str, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra

    def as_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            wire["field"] = self.field
        wire.update(self.extra)
        return wire

    def __repr__(self) -> str:
        return f"ChatError({self.code!r}, {self.message!r})"
