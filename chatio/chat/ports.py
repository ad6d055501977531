"""What the chat core needs from outside it: the :class:`Outbox` its facts go to (Socket.IO rooms in
production, and the user rooms that reach all of a user's devices) and the :class:`Admission` that says who
may enter which room (:class:`OpenAdmission` without accounts, ``chatio/chat/access.py`` with them).
"""

from __future__ import annotations

from typing import Any, Protocol

from chatio.accounts.identity import Identity
from chatio.store import Room
from chatio.store.access import OWNER, Restriction

#: Socket.IO rooms of users start with a character that chat room ids cannot hold.
USER_ROOM_PREFIX = "@user:"


def user_room(user_id: str) -> str:
    """The room every socket of a user is in, on every process: to reach all of a user's devices."""
    return f"{USER_ROOM_PREFIX}{user_id}"


class Outbox(Protocol):
    """Where the domain's facts go: Socket.IO rooms in production, a recorder in unit tests."""

    async def enter(self, sid: str, room: str) -> None: ...

    async def exit(self, sid: str, room: str) -> None: ...

    async def emit(
        self, event: str, data: dict[str, Any], *, to: str | list[str], skip: str | list[str] | None = None
    ) -> None:
        """Send ``event`` to a room, a list of rooms (each socket once) or a socket id."""


class Admission(Protocol):
    """Who may enter which room (``chatio/chat/access.py`` decides for private and direct-message rooms)."""

    async def admit(self, identity: Identity, room_id: str, room: Room | None) -> None:
        """Raise :class:`ChatError` unless ``identity`` may enter ``room_id`` (``room`` is None when it
        does not exist yet, and joining would create it)."""

    async def moderates(self, identity: Identity, room: Room) -> bool:
        """True when ``identity`` may remove others' messages in ``room``: its owner or an admin of it, or
        a server administrator."""

    async def restrictions(self, identity: Identity, room_id: str) -> list[Restriction]:
        """The user's bans and mutes in ``room_id`` that hold now."""

    async def role(self, identity: Identity, room: Room) -> str | None:
        """The user's role in ``room``: owner, admin, member, or None."""


class OpenAdmission:
    """Every room is open to everyone: the core on its own, without accounts."""

    async def admit(self, identity: Identity, room_id: str, room: Room | None) -> None:
        return None

    async def moderates(self, identity: Identity, room: Room) -> bool:
        return identity.admin or (room.owner is not None and room.owner == identity.user_id)

    async def restrictions(self, identity: Identity, room_id: str) -> list[Restriction]:
        return []

    async def role(self, identity: Identity, room: Room) -> str | None:
        return OWNER if room.owner is not None and room.owner == identity.user_id else None
