"""The embedded store: everything in this process's memory, lost on exit. The default for ``make run``.

Bounded: each room keeps its newest ``max_messages_per_room`` messages
(``CHATIO_MEMORY_MAX_MESSAGES_PER_ROOM``); older ones are dropped with everything kept about them (ids,
client ids), so a long-running server's memory stays flat however many messages pass through it.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Final

from chatio.store import (
    Conflict,
    Counts,
    Draft,
    Message,
    Page,
    ReadMark,
    Room,
    User,
    new_id,
    ngrams,
    now_ms,
    reacted,
)

DEFAULT_MAX_MESSAGES_PER_ROOM: Final = 10_000


class _RoomLog:
    """One room's messages, ``messages[i]`` holding seq ``first + i``."""

    __slots__ = ("by_client", "by_id", "change", "first", "grams", "messages")

    def __init__(self) -> None:
        self.first = 1
        self.messages: list[Message] = []
        self.by_id: dict[str, int] = {}
        self.by_client: dict[tuple[str, str], int] = {}
        self.change = 0
        self.grams = ngrams.Postings()

    @property
    def next_seq(self) -> int:
        return self.first + len(self.messages)

    def at(self, seq: int) -> Message | None:
        index = seq - self.first
        return self.messages[index] if 0 <= index < len(self.messages) else None

    def find(self, message_id: str) -> Message | None:
        seq = self.by_id.get(message_id)
        return None if seq is None else self.at(seq)

    def put(self, message: Message) -> Message:
        self.messages[message.seq - self.first] = message
        return message

    def drop_oldest(self) -> None:
        oldest = self.messages.pop(0)
        self.first += 1
        del self.by_id[oldest.id]
        if oldest.client_msg_id is not None:
            self.by_client.pop((oldest.user_id, oldest.client_msg_id), None)
        self.grams.dropped(self.first, len(self.messages))


class MemoryStore:
    """In-memory :class:`~chatio.store.Store`. Single event loop; every method finishes without awaiting."""

    def __init__(self, *, max_messages_per_room: int = DEFAULT_MAX_MESSAGES_PER_ROOM) -> None:
        if max_messages_per_room < 1:
            raise ValueError("max_messages_per_room must be at least 1")
        self.max_messages_per_room = max_messages_per_room
        self._users: dict[str, User] = {}
        self._user_ids_by_name: dict[str, str] = {}
        self._rooms: dict[str, Room] = {}
        self._public_room_ids: list[str] = []
        self._logs: dict[str, _RoomLog] = {}
        self._reads: dict[str, dict[str, ReadMark]] = {}
        self._read_rooms: dict[str, set[str]] = {}
        self._message_count = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def create_user(
        self, username: str, display_name: str, email: str | None = None, *, guest: bool = False
    ) -> User:
        if username in self._user_ids_by_name:
            raise Conflict(f"username {username!r} is taken")
        user = User(new_id(), username, display_name, email, now_ms(), guest)
        self._users[user.id] = user
        self._user_ids_by_name[username] = user.id
        return user

    async def get_user(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    async def find_user(self, username: str) -> User | None:
        user_id = self._user_ids_by_name.get(username)
        return None if user_id is None else self._users[user_id]

    async def find_users(self, usernames: Sequence[str]) -> list[User]:
        ids = (self._user_ids_by_name.get(name) for name in dict.fromkeys(usernames))
        return [self._users[user_id] for user_id in ids if user_id is not None]

    async def users(self, *, prefix: str = "", after: str | None = None, limit: int) -> list[User]:
        # Sorted on demand: listing users is rare next to everything else the store does.
        names = sorted(name for name in self._user_ids_by_name if name.startswith(prefix))
        start = 0 if after is None else bisect.bisect_right(names, after)
        return [self._users[self._user_ids_by_name[name]] for name in names[start : start + limit]]

    async def create_room(self, room_id: str, name: str, *, public: bool, owner: str | None) -> Room:
        if room_id in self._rooms:
            raise Conflict(f"room {room_id!r} exists")
        room = Room(room_id, name, public, owner, now_ms())
        self._rooms[room_id] = room
        if public:
            bisect.insort(self._public_room_ids, room_id)
        return room

    async def get_room(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    async def public_rooms(self, *, limit: int, after: str | None = None) -> list[Room]:
        start = 0 if after is None else bisect.bisect_right(self._public_room_ids, after)
        return [self._rooms[room_id] for room_id in self._public_room_ids[start : start + limit]]

    async def set_receipts(self, room_id: str, receipts: bool) -> Room | None:
        room = self._rooms.get(room_id)
        if room is None:
            return None
        room = self._rooms[room_id] = dataclasses.replace(room, receipts=receipts)
        return room

    async def set_retention(self, room_id: str, days: int | None) -> Room | None:
        room = self._rooms.get(room_id)
        if room is None:
            return None
        room = self._rooms[room_id] = dataclasses.replace(room, retention_days=days)
        return room

    async def room_ids(self, *, after: str | None, limit: int) -> list[str]:
        ids = sorted(self._rooms.keys() | self._logs.keys())
        start = 0 if after is None else bisect.bisect_right(ids, after)
        return ids[start : start + limit]

    async def expire(self, room: str, before_ts: int) -> int:
        log = self._logs.get(room)
        if log is None:
            return 0
        removed = 0
        while len(log.messages) > 1 and log.messages[0].ts < before_ts:
            log.drop_oldest()
            removed += 1
        if removed:
            self._message_count -= removed
            for index, message in enumerate(log.messages):
                quote = message.reply_to
                if quote is not None and quote.seq < log.first and quote.excerpt is not None:
                    log.messages[index] = dataclasses.replace(
                        message, reply_to=dataclasses.replace(quote, excerpt=None)
                    )
        return removed

    async def append(self, draft: Draft) -> Message:
        log = self._logs.get(draft.room)
        if log is None:
            log = self._logs[draft.room] = _RoomLog()
        key = None
        if draft.client_msg_id is not None:
            key = (draft.user_id, draft.client_msg_id)
            earlier = log.by_client.get(key)
            if earlier is not None and (message := log.at(earlier)) is not None:
                return message
        message = Message(
            id=new_id(),
            room=draft.room,
            seq=log.next_seq,
            user_id=draft.user_id,
            user=draft.user,
            text=draft.text,
            ts=now_ms(),
            client_msg_id=draft.client_msg_id,
            reply_to=draft.reply_to,
            display_name=draft.display_name,
        )
        log.messages.append(message)
        log.by_id[message.id] = message.seq
        log.grams.add(message.seq, message.text)
        self._message_count += 1
        if key is not None:
            log.by_client[key] = message.seq
        if draft.reply_to is not None and (parent := log.find(draft.reply_to.id)) is not None:
            log.put(dataclasses.replace(parent, reply_count=parent.reply_count + 1))
        while len(log.messages) > self.max_messages_per_room:
            log.drop_oldest()
            self._message_count -= 1
        return message

    async def page(
        self, room: str, *, before: int | None = None, after: int | None = None, limit: int
    ) -> Page:
        log = self._logs.get(room)
        if log is None:
            return Page([], False)
        # seq n sits at index n - first, so keyset bounds are plain slices.
        held = log.messages
        upper = len(held) if before is None else max(0, min(before - log.first, len(held)))
        if after is not None:
            lower = min(max(0, after + 1 - log.first), upper)
            chosen = held[lower : min(lower + limit, upper)]
            return Page(chosen, lower + len(chosen) < upper)
        lower = max(0, upper - limit)
        return Page(held[lower:upper], lower > 0)

    async def search(
        self, query: str, *, rooms: Sequence[str] | None, limit: int, skip: int = 0
    ) -> list[Message]:
        found = ngrams.plan(query)
        if found.empty or limit <= 0:
            return []
        logs: Iterable[_RoomLog | None] = (
            self._logs.values() if rooms is None else (self._logs.get(room) for room in dict.fromkeys(rooms))
        )
        scored: list[tuple[float, Message]] = []
        for log in logs:
            if log is None:
                continue
            # The postings give candidates; each one's current text decides (edits leave stale entries).
            for seq in log.grams.candidates(found):
                message = log.at(seq)
                score = None if message is None or message.deleted else ngrams.scored(found, message.text)
                if message is not None and score is not None:
                    scored.append((score, message))
        scored.sort(key=lambda item: (-item[0], -item[1].ts, -item[1].seq))
        return [message for _score, message in scored[skip : skip + limit]]

    async def counts(self) -> Counts:
        return Counts(len(self._users), len(self._rooms), self._message_count)

    # --- changes ------------------------------------------------------------------------------------------

    async def get_message(self, room: str, message_id: str) -> Message | None:
        log = self._logs.get(room)
        return None if log is None else log.find(message_id)

    def _live(self, room: str, message_id: str) -> tuple[_RoomLog, Message] | None:
        log = self._logs.get(room)
        message = None if log is None else log.find(message_id)
        return None if log is None or message is None or message.deleted else (log, message)

    async def edit(self, room: str, message_id: str, text: str) -> Message | None:
        found = self._live(room, message_id)
        if found is None:
            return None
        log, message = found
        log.change += 1
        log.grams.add(message.seq, text)
        return log.put(dataclasses.replace(message, text=text, edited_at=now_ms(), change=log.change))

    async def delete(self, room: str, message_id: str) -> Message | None:
        found = self._live(room, message_id)
        if found is None:
            return await self.get_message(room, message_id)
        log, message = found
        log.change += 1
        tombstone = dataclasses.replace(
            message, text="", deleted=True, reactions=(), edited_at=now_ms(), change=log.change
        )
        for index, other in enumerate(log.messages):
            if other.reply_to is not None and other.reply_to.id == message_id:
                quote = dataclasses.replace(other.reply_to, excerpt=None)
                log.messages[index] = dataclasses.replace(other, reply_to=quote)
        return log.put(tombstone)

    async def react(self, room: str, message_id: str, emoji: str, user: str, *, add: bool) -> Message | None:
        found = self._live(room, message_id)
        if found is None:
            return None
        log, message = found
        reactions = reacted(message.reactions, emoji, user, add=add)
        if reactions is None:
            return message
        log.change += 1
        return log.put(dataclasses.replace(message, reactions=reactions, change=log.change))

    async def changes(self, room: str, *, after_change: int, upto_seq: int, limit: int) -> Page:
        log = self._logs.get(room)
        if log is None or log.change <= after_change:
            return Page([], False)
        changed = sorted(
            (m for m in log.messages if m.change > after_change and m.seq <= upto_seq),
            key=lambda message: message.change,
        )
        return Page(changed[:limit], len(changed) > limit)

    async def last_change(self, room: str) -> int:
        log = self._logs.get(room)
        return 0 if log is None else log.change

    # --- read marks ---------------------------------------------------------------------------------------

    async def mark_read(self, room: str, user_id: str, user: str, seq: int) -> int:
        marks = self._reads.setdefault(room, {})
        earlier = marks.get(user_id)
        if earlier is None or seq > earlier.seq:
            marks[user_id] = ReadMark(room, user_id, user, seq)
            self._read_rooms.setdefault(user_id, set()).add(room)
        return marks[user_id].seq

    async def last_read(self, room: str, user_id: str) -> int | None:
        mark = self._reads.get(room, {}).get(user_id)
        return None if mark is None else mark.seq

    async def read_marks(self, room: str, *, limit: int) -> list[ReadMark]:
        marks = sorted(self._reads.get(room, {}).values(), key=lambda mark: (-mark.seq, mark.user))
        return marks[:limit]

    async def read_rooms(self, user_id: str, *, limit: int) -> list[ReadMark]:
        rooms = sorted(self._read_rooms.get(user_id, ()))[:limit]
        return [self._reads[room][user_id] for room in rooms]

    async def unread(self, room: str, user_id: str, after_seq: int, *, cap: int) -> int:
        log = self._logs.get(room)
        if log is None:
            return 0
        count = 0
        for message in log.messages[max(0, after_seq + 1 - log.first) :]:
            if message.user_id != user_id and not message.deleted:
                count += 1
                if count >= cap:
                    break
        return count
