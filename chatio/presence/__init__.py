"""Who is where: room membership by user across sockets, status, and typing indicators.

``Presence`` is the protocol (shared across processes by the Redis driver); ``MemoryPresence`` is the
embedded default. ``TypingTracker`` turns typing_start/typing_stop into state changes that expire.
The Redis driver is :mod:`chatio.presence.redis` (its Lua scripts in :mod:`chatio.presence.lua`).

May import :mod:`chatio.background`, :mod:`chatio.redisconn` and redis-py; nothing of the chat domain or
the layers above it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from chatio.background import Background

log = logging.getLogger(__name__)

OFFLINE = "offline"
ONLINE = "online"


class RoomFull(Exception):
    """A join refused because the room holds its limit of users."""

    def __init__(self, room: str, limit: int) -> None:
        super().__init__(f"room {room!r} has {limit} members")
        self.room = room
        self.limit = limit


@dataclasses.dataclass(frozen=True, slots=True)
class MemberState:
    user: str
    status: str


class Presence(Protocol):
    async def connect(self, user: str, sid: str) -> bool:
        """Record a socket of ``user``; True when it is the user's first (they came online)."""

    async def disconnect(self, user: str, sid: str) -> bool:
        """Forget a socket; True when it was the user's last (they went offline)."""

    async def join(self, room: str, user: str, sid: str, limit: int = 0) -> bool:
        """Put a socket in ``room``; True when it is the user's first socket there.

        ``limit`` > 0: raise :class:`RoomFull` instead when the user is not in ``room`` yet and ``limit``
        users are; the check and the join are one step, for every process sharing this presence.
        """

    async def leave(self, room: str, user: str, sid: str) -> bool:
        """Take a socket out of ``room``; True when it was the user's last socket there."""

    async def count(self, room: str) -> int:
        """How many distinct users are in ``room``."""

    async def members(self, room: str) -> list[MemberState]:
        """The users in ``room`` with their status, ordered by name."""

    async def set_status(self, user: str, status: str) -> None: ...

    async def status(self, user: str) -> str:
        """The user's status, ``offline`` when no socket of theirs is connected."""

    async def rooms_of(self, user: str) -> list[str]:
        """Rooms where ``user`` has at least one socket."""

    async def online_users(self) -> int: ...

    async def active_rooms(self) -> int: ...

    async def pods(self) -> dict[str, int]:
        """The live server processes sharing this presence, by name, with their socket counts."""


class MemoryPresence:
    """Presence for one process, named ``pod``. Connecting or joining a socket twice changes nothing."""

    def __init__(self, pod: str = "local") -> None:
        self._pod = pod
        self._rooms: defaultdict[str, defaultdict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self._sockets: defaultdict[str, set[str]] = defaultdict(set)
        self._status: dict[str, str] = {}

    async def connect(self, user: str, sid: str) -> bool:
        sockets = self._sockets[user]
        if sid in sockets:
            return False
        sockets.add(sid)
        if len(sockets) == 1:
            self._status[user] = ONLINE
            return True
        return False

    async def disconnect(self, user: str, sid: str) -> bool:
        sockets = self._sockets.get(user)
        if sockets is None:
            return False
        sockets.discard(sid)
        if sockets:
            return False
        del self._sockets[user]
        self._status.pop(user, None)
        return True

    async def join(self, room: str, user: str, sid: str, limit: int = 0) -> bool:
        users: dict[str, set[str]] = self._rooms.get(room, {})
        if limit > 0 and user not in users and len(users) >= limit:
            raise RoomFull(room, limit)
        sockets = self._rooms[room][user]
        if sid in sockets:
            return False
        sockets.add(sid)
        return len(sockets) == 1

    async def leave(self, room: str, user: str, sid: str) -> bool:
        users = self._rooms.get(room)
        if users is None or user not in users:
            return False
        sockets = users[user]
        sockets.discard(sid)
        if sockets:
            return False
        del users[user]
        if not users:
            del self._rooms[room]
        return True

    async def count(self, room: str) -> int:
        users = self._rooms.get(room)
        return 0 if users is None else len(users)

    async def members(self, room: str) -> list[MemberState]:
        users = self._rooms.get(room)
        if users is None:
            return []
        return [MemberState(user, self._status.get(user, OFFLINE)) for user in sorted(users)]

    async def set_status(self, user: str, status: str) -> None:
        if user in self._sockets:
            self._status[user] = status

    async def status(self, user: str) -> str:
        return self._status.get(user, OFFLINE)

    async def rooms_of(self, user: str) -> list[str]:
        return sorted(room for room, users in self._rooms.items() if user in users)

    async def online_users(self) -> int:
        return len(self._sockets)

    async def active_rooms(self) -> int:
        return len(self._rooms)

    async def pods(self) -> dict[str, int]:
        return {self._pod: sum(len(sockets) for sockets in self._sockets.values())}


TypingExpired = Callable[[str, str], Coroutine[Any, Any, None]]


class TypingTracker:
    """Typing state per (room, user). A start not renewed within the timeout expires by itself,
    and ``on_expired(room, user)`` is called for it."""

    def __init__(self, timeout_seconds: float, on_expired: TypingExpired) -> None:
        self._timeout = timeout_seconds
        self._on_expired = on_expired
        self._expiry: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._tasks = Background(log, "typing expiry failed")

    def is_typing(self, room: str, user: str) -> bool:
        return (room, user) in self._expiry

    def start(self, room: str, user: str) -> bool:
        """Start or renew ``user``'s typing state in ``room``; True when it changed."""
        key = (room, user)
        previous = self._expiry.pop(key, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._expiry[key] = loop.call_later(self._timeout, self._expire, key)
        return previous is None

    def stop(self, room: str, user: str) -> bool:
        """End ``user``'s typing state in ``room``; True when it changed."""
        handle = self._expiry.pop((room, user), None)
        if handle is None:
            return False
        handle.cancel()
        return True

    def _expire(self, key: tuple[str, str]) -> None:
        if self._expiry.pop(key, None) is None:
            return
        self._tasks.spawn(self._on_expired(key[0], key[1]))

    def close(self) -> None:
        for handle in self._expiry.values():
            handle.cancel()
        self._expiry.clear()
