"""The embedded :class:`~chatio.store.access.AccessStore`: this process's memory, lost on exit."""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict

from chatio.store import now_ms
from chatio.store.access import AuditEntry, Invitation, Membership, Restriction

#: Audit entries the embedded store keeps (the oldest go first).
AUDIT_MAX = 10_000


class MemoryAccessStore:
    """Single event loop; no method awaits, so each is atomic."""

    def __init__(self) -> None:
        self._members: defaultdict[str, dict[str, Membership]] = defaultdict(dict)  # by user, then room
        self._invitations: dict[tuple[str, str], Invitation] = {}
        self._restrictions: dict[tuple[str, str, str], Restriction] = {}
        self._audit: list[AuditEntry] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def set_role(self, room: str, user_id: str, role: str) -> None:
        rooms = self._members[user_id]
        existing = rooms.get(room)
        if existing is None:
            rooms[room] = Membership(room, user_id, role, now_ms())
        else:
            rooms[room] = dataclasses.replace(existing, role=role)

    async def role(self, room: str, user_id: str) -> str | None:
        membership = self._members.get(user_id, {}).get(room)
        return None if membership is None else membership.role

    async def remove_member(self, room: str, user_id: str) -> bool:
        return self._members.get(user_id, {}).pop(room, None) is not None

    async def rooms_of(self, user_id: str, *, prefix: str = "") -> list[Membership]:
        rooms = self._members.get(user_id, {})
        return [rooms[room] for room in sorted(rooms) if room.startswith(prefix)]

    async def invite(self, invitation: Invitation) -> bool:
        key = (invitation.room, invitation.user_id)
        if key in self._invitations:
            return False
        self._invitations[key] = invitation
        return True

    async def take_invitation(self, room: str, user_id: str) -> Invitation | None:
        return self._invitations.pop((room, user_id), None)

    async def invitations_for(self, user_id: str) -> list[Invitation]:
        mine = [invitation for invitation in self._invitations.values() if invitation.user_id == user_id]
        return sorted(mine, key=lambda invitation: (invitation.created_at, invitation.room))

    async def forget_user(self, user_id: str) -> None:
        self._members.pop(user_id, None)
        for key in [k for k, i in self._invitations.items() if user_id in (i.user_id, i.by)]:
            del self._invitations[key]

    async def restrict(self, restriction: Restriction) -> None:
        self._restrictions[(restriction.room, restriction.user_id, restriction.kind)] = restriction

    async def lift(self, room: str, user_id: str, kind: str) -> bool:
        return self._restrictions.pop((room, user_id, kind), None) is not None

    async def restrictions(self, room: str, user_id: str, *, now: int) -> list[Restriction]:
        found = (self._restrictions.get((room, user_id, kind)) for kind in ("ban", "mute"))
        return [r for r in found if r is not None and _holds(r, now)]

    async def room_restrictions(self, room: str, kind: str, *, now: int, limit: int) -> list[Restriction]:
        # A scan of every restriction: the embedded store serves one process's few rooms.
        held = [
            r for r in self._restrictions.values() if r.room == room and r.kind == kind and _holds(r, now)
        ]
        return sorted(held, key=lambda r: (r.at, r.user_id), reverse=True)[:limit]

    async def record(self, entry: AuditEntry) -> None:
        self._audit.append(entry)
        if len(self._audit) > AUDIT_MAX:
            del self._audit[0]

    async def audit(self, *, room: str | None, limit: int) -> list[AuditEntry]:
        newest_first = (entry for entry in reversed(self._audit) if room is None or entry.room == room)
        return list(itertools.islice(newest_first, limit))


def _holds(restriction: Restriction, now: int) -> bool:
    return restriction.until is None or restriction.until > now
