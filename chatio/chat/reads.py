"""Read marks and unread counts: where each user stands in each room (docs/protocol.md, mark_read).

A read mark is the highest seq a user has read in a room, one per user and room whatever the device: the
store only ever raises it. The unread count is how many live messages of others came after it, counted up
to ``UNREAD_CAP``. Telling the user's other devices and the room is the chat core's part
(:meth:`~chatio.chat.service.ChatService.mark_read`).
"""

from __future__ import annotations

import dataclasses
from typing import Final

from chatio.accounts.identity import Identity
from chatio.store import Message, Room, Store

#: Unread counts stop counting here (a client shows "999+").
UNREAD_CAP: Final = 1000
#: The most rooms a user's room list shows.
ROOM_LIST_MAX: Final = 200


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """Where a user stands in a room: their read mark, how many messages of others came after it, and the
    room's newest message."""

    room: str
    last_read: int
    unread: int
    last_message: Message | None


class ReadMarks:
    """Reads and raises read marks in ``store``; every coroutine may raise the store's errors."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def reading(self, identity: Identity, room_id: str, *, first_visit: bool = False) -> Reading:
        """The user's :class:`Reading` of a room. On a ``first_visit`` (a join without a read mark) the
        room's newest message counts as read: joining a busy room shows nothing unread."""
        newest = (await self._store.page(room_id, limit=1)).messages
        last = newest[0] if newest else None
        mark = await self._store.last_read(room_id, identity.user_id)
        if mark is None:
            mark = 0
            if first_visit:
                seq = 0 if last is None else last.seq
                mark = await self._store.mark_read(room_id, identity.user_id, identity.username, seq)
        unread = await self._store.unread(room_id, identity.user_id, mark, cap=UNREAD_CAP)
        return Reading(room_id, mark, unread, last)

    async def room_list(self, identity: Identity, rooms: list[str]) -> list[tuple[Room, Reading]]:
        """The user's rooms (those they ever joined, and ``rooms``), each with the user's :class:`Reading`."""
        marks = await self._store.read_rooms(identity.user_id, limit=ROOM_LIST_MAX)
        listed = []
        for room_id in sorted({mark.room for mark in marks} | set(rooms))[:ROOM_LIST_MAX]:
            room = await self._store.get_room(room_id)
            if room is not None:
                listed.append((room, await self.reading(identity, room_id)))
        return listed

    async def mark(self, identity: Identity, room_id: str, seq: int) -> tuple[int | None, int]:
        """Raise the user's mark to ``seq`` (capped at the room's newest message): (the mark before, the
        mark now). Whichever device asks, the mark never goes down."""
        newest = (await self._store.page(room_id, limit=1)).messages
        seq = min(seq, newest[0].seq if newest else 0)
        before = await self._store.last_read(room_id, identity.user_id)
        return before, await self._store.mark_read(room_id, identity.user_id, identity.username, seq)
