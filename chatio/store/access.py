"""The ``AccessStore`` protocol: who belongs to which room, with which role, and pending invitations.

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
