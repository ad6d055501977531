"""The ``AccessStore`` protocol: who belongs to which room, with which role, pending invitations, who is
banned or muted where, and the audit trail of moderation.

Public rooms need no entry here to be joined; private rooms (and direct-message rooms) admit only the
users listed. Two implementations pass one contract suite (``tests/store/test_access_contract.py``):
:class:`~chatio.store.access_memory.MemoryAccessStore` and
:class:`~chatio.store.access_mongo.MongoAccessStore`.
"""

from __future__ import annotations

import dataclasses
from typing import Final, Protocol

OWNER: Final = "owner"
ADMIN: Final = "admin"
MEMBER: Final = "member"
ROLES: Final = (OWNER, ADMIN, MEMBER)
BAN: Final = "ban"
MUTE: Final = "mute"


@dataclasses.dataclass(frozen=True, slots=True)
class Membership:
    room: str
    user_id: str
    role: str
    since: int


@dataclasses.dataclass(frozen=True, slots=True)
class Invitation:
    room: str
    user_id: str
    by: str  # the inviter's user id
    by_name: str  # and username, for the invitee's list
    created_at: int


@dataclasses.dataclass(frozen=True, slots=True)
class Restriction:
    """A ban (cannot join) or a mute (cannot send) of a user in a room, until a time (ms) or lifted.

    ``user`` (the target's username), ``by`` (the moderator's), ``reason`` and ``at`` (when, ms) are what a
    room's moderators see in its list of bans and mutes; entries stored before they were kept lack them.
    """

    room: str
    user_id: str
    kind: str  # BAN or MUTE
    until: int | None
    user: str | None = None
    by: str | None = None
    reason: str = ""
    at: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEntry:
    """One moderation action: who (``actor``) did what (``action``) to whom, when, why."""

    id: str
    room: str
    action: str
    actor_id: str
    actor: str
    target_id: str | None
    target: str | None
    reason: str
    at: int
    until: int | None = None
    message_id: str | None = None


class AccessStore(Protocol):
    """Every method may raise :class:`~chatio.store.Unavailable`. Times are Unix milliseconds."""

    async def start(self) -> None:
        """Connect and prepare (indexes); idempotent."""

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def set_role(self, room: str, user_id: str, role: str) -> None:
        """Make ``user_id`` a member of ``room`` with ``role``, or change their role; ``since`` stays."""

    async def role(self, room: str, user_id: str) -> str | None: ...

    async def remove_member(self, room: str, user_id: str) -> bool:
        """False when the user was no member."""

    async def rooms_of(self, user_id: str, *, prefix: str = "") -> list[Membership]:
        """The user's memberships in rooms whose id starts with ``prefix``, ordered by room id."""

    async def invite(self, invitation: Invitation) -> bool:
        """Store an invitation; False (and the first one kept) when that user is invited there already."""

    async def take_invitation(self, room: str, user_id: str) -> Invitation | None:
        """Remove and return the user's invitation to ``room``, atomically: only one caller gets it."""

    async def invitations_for(self, user_id: str) -> list[Invitation]:
        """Pending invitations of ``user_id``, oldest first."""

    async def forget_user(self, user_id: str) -> None:
        """Remove the user's memberships and the invitations to and from them."""

    async def restrict(self, restriction: Restriction) -> None:
        """Store a ban or mute, replacing the user's earlier one of that kind in that room."""

    async def lift(self, room: str, user_id: str, kind: str) -> bool:
        """Remove a ban or mute; False when there was none."""

    async def restrictions(self, room: str, user_id: str, *, now: int) -> list[Restriction]:
        """The user's bans and mutes in ``room`` that hold at ``now`` (ms)."""

    async def room_restrictions(self, room: str, kind: str, *, now: int, limit: int) -> list[Restriction]:
        """The bans (or mutes) in ``room`` that hold at ``now``, newest first, at most ``limit``."""

    async def record(self, entry: AuditEntry) -> None:
        """Append to the audit trail."""

    async def audit(self, *, room: str | None, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` entries (of ``room``, or of every room), newest first."""
