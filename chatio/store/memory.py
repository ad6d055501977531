"""The embedded store: everything in this process's memory, lost on exit. The default for ``make run``."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from chatio.store import (
    Conflict,
    Counts,
    Draft,
    Message,
    Page,
    Room,
    User,
    new_id,
    now_ms,
    search_terms,
    words,
)


class MemoryStore:
    """In-memory :class:`~chatio.store.Store`. Single event loop; every method finishes without awaiting."""

    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._user_ids_by_name: dict[str, str] = {}
        self._rooms: dict[str, Room] = {}
        self._public_room_ids: list[str] = []
        self._messages: defaultdict[str, list[Message]] = defaultdict(list)
        self._by_client_id: dict[tuple[str, str, str], Message] = {}
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

    async def append(self, draft: Draft) -> Message:
        key = None
        if draft.client_msg_id is not None:
            key = (draft.room, draft.user_id, draft.client_msg_id)
            earlier = self._by_client_id.get(key)
            if earlier is not None:
                return earlier
        log = self._messages[draft.room]
        message = Message(
            id=new_id(),
            room=draft.room,
            seq=len(log) + 1,
            user_id=draft.user_id,
            user=draft.user,
            text=draft.text,
            ts=now_ms(),
            client_msg_id=draft.client_msg_id,
        )
        log.append(message)
        self._message_count += 1
        if key is not None:
            self._by_client_id[key] = message
        return message

    async def page(
        self, room: str, *, before: int | None = None, after: int | None = None, limit: int
    ) -> Page:
        # seq n sits at index n - 1, so keyset bounds are plain slices.
        log = self._messages.get(room, [])
        upper = len(log) if before is None else max(0, min(before - 1, len(log)))
        if after is not None:
            lower = min(after, upper)
            chosen = log[lower : min(lower + limit, upper)]
            return Page(chosen, lower + len(chosen) < upper)
        lower = max(0, upper - limit)
        return Page(log[lower:upper], lower > 0)

    async def search(
        self, query: str, *, rooms: Sequence[str] | None, limit: int, skip: int = 0
    ) -> list[Message]:
        terms = search_terms(query)
        if not terms or limit <= 0:
            return []
        logs: Iterable[list[Message]] = (
            self._messages.values()
            if rooms is None
            else (self._messages.get(room, []) for room in dict.fromkeys(rooms))
        )
        scored: list[tuple[float, Message]] = []
        for log in logs:
            for message in log:
                counts = Counter(words(message.text))
                if all(term in counts for term in terms):
                    # Like a text index: the larger the share of the message the terms make up, the better.
                    scored.append((sum(counts[term] for term in terms) / counts.total(), message))
        scored.sort(key=lambda item: (-item[0], -item[1].ts, -item[1].seq))
        return [message for _score, message in scored[skip : skip + limit]]

    async def counts(self) -> Counts:
        return Counts(len(self._users), len(self._rooms), self._message_count)
