"""Bans and mutes as the chat core meets them on this process (chatio/chat/moderation.py decides them)."""

from __future__ import annotations

from chatio import errors
from chatio.errors import ChatError
from chatio.store import now_ms
from chatio.store.access import BAN, MUTE, Restriction


class Mutes:
    """The mutes of users with sockets here, by (room, user id): until when (ms), None for until lifted.

    Read from the store when a socket joins (:meth:`admit`) and kept current by moderation signals
    (:meth:`mute`, :meth:`unmute`), so that ``send`` checks them without asking the store.
    """

    def __init__(self) -> None:
        self._until: dict[tuple[str, str], int | None] = {}

    def admit(self, user_id: str, room_id: str, restrictions: list[Restriction]) -> None:
        """Refuse a banned user (``banned``); remember a muted one's mute."""
        self._until.pop((room_id, user_id), None)
        for restriction in restrictions:
            if restriction.kind == BAN:
                raise ChatError(
                    errors.BANNED,
                    f"you are banned from room {room_id!r}",
                    field="room",
                    untilMs=restriction.until,
                )
            if restriction.kind == MUTE:
                self._until[(room_id, user_id)] = restriction.until

    def mute(self, user_id: str, room_id: str, until: int | None) -> None:
        self._until[(room_id, user_id)] = until

    def unmute(self, user_id: str, room_id: str) -> None:
        self._until.pop((room_id, user_id), None)

    def check(self, user_id: str, room_id: str) -> None:
        """Refuse a muted user (``muted``, with ``untilMs``); forget a mute that is over."""
        key = (room_id, user_id)
        if key not in self._until:
            return
        until = self._until[key]
        if until is not None and until <= now_ms():
            del self._until[key]
            return
        raise ChatError(errors.MUTED, f"you are muted in room {room_id!r}", field="room", untilMs=until)
