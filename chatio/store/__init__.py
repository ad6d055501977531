"""The ``Store`` protocol: users, rooms and messages with a per-room ``seq``.

Two implementations pass the same contract suite (``tests/store/test_contract.py``): the embedded
:class:`~chatio.store.memory.MemoryStore` and :class:`~chatio.store.mongo.MongoStore`. The package also
holds the account and room-access store protocols with their drivers, and the message cipher
(:mod:`chatio.store.cipher`, encryption at rest). It imports nothing of chatio outside itself: every layer
may use it.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import time
from collections.abc import Sequence
from typing import Final, Protocol


class StoreError(Exception):
    """Base class for storage failures that callers translate into error codes."""


class Conflict(StoreError):
    """A unique key (username, room id) is already taken."""


class Unavailable(StoreError):
    """The backend did not answer in time or refused; the operation is not done.

    For a write that reached the backend just before the deadline this cannot be certain: it may still land.
    Retrying an ``append`` with the same ``client_msg_id`` is always safe.
    """


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    display_name: str
    email: str | None
    created_at: int
    guest: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Room:
    id: str
    name: str
    public: bool
    owner: str | None
    created_at: int


@dataclasses.dataclass(frozen=True, slots=True)
class Draft:
    """A message about to be stored; the store assigns ``id``, ``seq`` and ``ts``."""

    room: str
    user_id: str
    user: str
    text: str
    client_msg_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    id: str
    room: str
    seq: int
    user_id: str
    user: str
    text: str
    ts: int
    client_msg_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """A keyset page of messages, oldest first; ``has_more`` looks in the direction asked."""

    messages: list[Message]
    has_more: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Counts:
    users: int
    rooms: int
    messages: int


class Store(Protocol):
    """Durable state. Every method may raise :class:`Unavailable`; writers may raise :class:`Conflict`."""

    async def start(self) -> None:
        """Connect and prepare (indexes); idempotent."""

    async def close(self) -> None:
        """Flush what was accepted and release resources."""

    async def ping(self) -> None:
        """Return when the backend answers; raise :class:`Unavailable` otherwise."""

    async def create_user(
        self, username: str, display_name: str, email: str | None = None, *, guest: bool = False
    ) -> User:
        """Store a new user; :class:`Conflict` when the username is taken."""

    async def get_user(self, user_id: str) -> User | None: ...

    async def find_user(self, username: str) -> User | None: ...

    async def create_room(self, room_id: str, name: str, *, public: bool, owner: str | None) -> Room:
        """Store a new room; :class:`Conflict` when the id is taken."""

    async def get_room(self, room_id: str) -> Room | None: ...

    async def public_rooms(self, *, limit: int, after: str | None = None) -> list[Room]:
        """Public rooms ordered by id, the first ``limit`` with an id greater than ``after``."""

    async def append(self, draft: Draft) -> Message:
        """Store ``draft`` with the room's next ``seq``; return it once durable.

        Idempotent: a draft whose ``client_msg_id`` this user already used in this room returns the
        message stored the first time, and stores nothing.
        """

    async def page(
        self, room: str, *, before: int | None = None, after: int | None = None, limit: int
    ) -> Page:
        """Keyset page on ``seq``: ``after`` pages forward, otherwise the newest below ``before``."""

    async def search(
        self, query: str, *, rooms: Sequence[str] | None, limit: int, skip: int = 0
    ) -> list[Message]:
        """Messages holding every term of ``query`` (see :func:`search_terms`), case-insensitively.

        Only messages in ``rooms`` when it is not None. Best match first (the backend scores), then newest
        first; ``skip`` and ``limit`` page through that order. A query without terms finds nothing.
        """

    async def counts(self) -> Counts: ...


SEARCH_MAX_TERMS: Final = 16
_WORD: Final = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The lower-cased words of ``text``: runs of letters, digits and underscores."""
    # lower(), not casefold(): a database's case-insensitive match folds "ß" to itself, not to "ss".
    return _WORD.findall(text.lower())


def search_terms(query: str) -> list[str]:
    """The distinct :func:`words` of a search query, the first ``SEARCH_MAX_TERMS`` of them."""
    return list(dict.fromkeys(words(query)))[:SEARCH_MAX_TERMS]


def now_ms() -> int:
    """Milliseconds since the Unix epoch, the unit of every timestamp chatio stores."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A 24-hex-digit id ordered by creation second, made like a MongoDB ObjectId.

    Seconds since the epoch, 5 random bytes drawn once per process, and a counter from a random start:
    unique within a process, and across processes unless two draw the same 40 random bits.
    """
    return f"{int(time.time()):08x}{_ID_PROCESS}{next(_id_counter) & 0xFFFFFF:06x}"


def _reseed_ids() -> None:
    global _ID_PROCESS, _id_counter
    _ID_PROCESS = os.urandom(5).hex()
    _id_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))


_ID_PROCESS = ""
_id_counter = itertools.count()
_reseed_ids()
os.register_at_fork(after_in_child=_reseed_ids)
