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
    #: Whether members see each other's read receipts (``set_room_options``); a user's own devices always do.
    receipts: bool = True
    #: Days its messages are kept, overriding ``CHATIO_RETENTION_DAYS`` (0: forever); None: the default.
    retention_days: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ReadMark:
    """The highest seq ``user`` has read in ``room``."""

    room: str
    user_id: str
    user: str
    seq: int


@dataclasses.dataclass(frozen=True, slots=True)
class Quote:
    """What a reply shows of the message it answers: who wrote it and how it began.

    ``excerpt`` is taken when the reply is sent (the first ``EXCERPT_LENGTH`` characters); it becomes None
    when the parent is deleted, so that the deleted text is gone from storage while the reply still shows
    that it was one.
    """

    id: str
    seq: int
    user_id: str
    user: str
    excerpt: str | None


#: Who reacted with what: ``(emoji, (username, ...))`` pairs, each emoji once, in the order first used.
Reactions = tuple[tuple[str, tuple[str, ...]], ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Draft:
    """A message about to be stored; the store assigns ``id``, ``seq`` and ``ts``."""

    room: str
    user_id: str
    user: str
    text: str
    client_msg_id: str | None = None
    reply_to: Quote | None = None
    #: The author's display name when they wrote it (None: show the username).
    display_name: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """A stored message. ``change`` is the room's change number of its last edit, deletion or reaction
    (0: never changed); a deleted message is a tombstone: ``deleted``, empty ``text``, no reactions."""

    id: str
    room: str
    seq: int
    user_id: str
    user: str
    text: str
    ts: int
    client_msg_id: str | None = None
    reply_to: Quote | None = None
    reply_count: int = 0
    edited_at: int | None = None
    deleted: bool = False
    reactions: Reactions = ()
    change: int = 0
    display_name: str | None = None


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

    async def find_users(self, usernames: Sequence[str]) -> list[User]:
        """The users among ``usernames`` that exist, in no particular order."""

    async def users(self, *, prefix: str = "", after: str | None = None, limit: int) -> list[User]:
        """Users ordered by username: the first ``limit`` after ``after`` whose username starts with
        ``prefix`` (case-sensitively, as usernames are stored)."""

    async def create_room(self, room_id: str, name: str, *, public: bool, owner: str | None) -> Room:
        """Store a new room; :class:`Conflict` when the id is taken."""

    async def get_room(self, room_id: str) -> Room | None: ...

    async def public_rooms(self, *, limit: int, after: str | None = None) -> list[Room]:
        """Public rooms ordered by id, the first ``limit`` with an id greater than ``after``."""

    async def set_receipts(self, room_id: str, receipts: bool) -> Room | None:
        """Turn the room's read receipts on or off; None when there is no such room."""

    async def set_retention(self, room_id: str, days: int | None) -> Room | None:
        """Set the room's own retention (None: the server's); None when there is no such room."""

    async def room_ids(self, *, after: str | None, limit: int) -> list[str]:
        """Ids of every room (public, private, direct) above ``after``, in order: for sweeping."""

    async def expire(self, room: str, before_ts: int) -> int:
        """Remove the room's messages stored before ``before_ts`` (ms), all but its newest (so that seqs
        go on from there), and the excerpts quoting them; return how many were removed."""

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
        """Messages holding every term of ``query``, case-insensitively: n-grams, :mod:`chatio.store.ngrams`.

        Only messages in ``rooms`` when it is not None. Best match first (the backend scores), then newest
        first; ``skip`` and ``limit`` page through that order. A query without terms finds nothing.
        """

    async def counts(self) -> Counts: ...

    # --- changes to stored messages (each takes the room's next change number) ---------------------------

    async def get_message(self, room: str, message_id: str) -> Message | None:
        """The message ``message_id`` of ``room`` (a tombstone once deleted); None when there is none."""

    async def edit(self, room: str, message_id: str, text: str) -> Message | None:
        """Replace the text and set ``edited_at``; None when there is no such message or it is deleted."""

    async def delete(self, room: str, message_id: str) -> Message | None:
        """Turn the message into a tombstone (text and reactions gone, ``seq`` kept) and drop the excerpt
        from the replies quoting it. None when there is no such message; an earlier tombstone is returned
        unchanged."""

    async def react(self, room: str, message_id: str, emoji: str, user: str, *, add: bool) -> Message | None:
        """Add or remove ``user``'s ``emoji`` (each user once per emoji); the message unchanged when there
        was nothing to do; None when there is no such message or it is deleted."""

    async def changes(self, room: str, *, after_change: int, upto_seq: int, limit: int) -> Page:
        """Messages with ``seq <= upto_seq`` changed after ``after_change``, in change order; ``has_more``
        when more than ``limit`` are."""

    async def last_change(self, room: str) -> int:
        """The room's latest change number (0 before the first change)."""

    # --- read marks ---------------------------------------------------------------------------------------

    async def mark_read(self, room: str, user_id: str, user: str, seq: int) -> int:
        """Raise the user's read mark in ``room`` to ``seq``, never lower it; return the mark now stored."""

    async def last_read(self, room: str, user_id: str) -> int | None:
        """The user's read mark in ``room``; None when they never had one."""

    async def read_marks(self, room: str, *, limit: int) -> list[ReadMark]:
        """The room's read marks, highest seq first."""

    async def read_rooms(self, user_id: str, *, limit: int) -> list[ReadMark]:
        """The user's read marks, one per room, ordered by room id."""

    async def unread(self, room: str, user_id: str, after_seq: int, *, cap: int) -> int:
        """How many live messages of others came after ``after_seq``, counted up to ``cap``."""


#: The reactions a message accepts: a fixed, small set, so that a message's reactions stay bounded.
REACTIONS: Final = (
    "👍",
    "👎",
    "❤️",
    "😂",
    "😮",
    "😢",
    "🎉",
    "🙏",
    "👀",
    "🔥",
    "✅",
    "❌",
    "🚀",
    "💯",
    "🤔",
    "👏",
)

#: How much of a parent's text a reply quotes.
EXCERPT_LENGTH: Final = 100


def excerpt(text: str) -> str:
    """The start of ``text`` that a reply quotes."""
    return text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"


def reacted(reactions: Reactions, emoji: str, user: str, *, add: bool) -> Reactions | None:
    """``reactions`` with ``user``'s ``emoji`` added or removed; None when that changes nothing."""
    table = {name: list(users) for name, users in reactions}
    users = table.setdefault(emoji, [])
    if (user in users) == add:
        return None
    if add:
        users.append(user)
    else:
        users.remove(user)
    return tuple((name, tuple(names)) for name, names in table.items() if names)


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
