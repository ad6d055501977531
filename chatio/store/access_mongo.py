"""MongoDB :class:`~chatio.store.access.AccessStore`.

Collections:

``room_members``  ``{_id: "<room> <user_id>", room, user_id, role, since}``; index ``(user_id, room)``.
``invitations``   ``{_id: "<room> <user_id>", room, user_id, by, by_name, created_at}``;
                  indexes ``(user_id, created_at)`` and ``by``.

``restrictions``  ``{_id: "<room> <user_id> <kind>", room, user_id, kind, until, user, by, reason, at}``:
                  bans and mutes; index ``(room, kind, at)``.
``audit``         ``{_id, room, action, actor_id, actor, target_id, target, reason, at, until, message_id}``;
                  indexes ``(room, at)`` and ``at``.

The ``_id`` (room ids cannot hold a space) makes "one membership, one invitation per user and room" the
primary key's job.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Final

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.errors import DuplicateKeyError

from chatio.store import now_ms
from chatio.store.access import AuditEntry, Invitation, Membership, Restriction
from chatio.store.mongo_base import Document, MongoCollections

MEMBER_INDEXES: Final = [IndexModel([("user_id", ASCENDING), ("room", ASCENDING)], name="user_room")]
AUDIT_INDEXES: Final = [
    IndexModel([("room", ASCENDING), ("at", DESCENDING)], name="room_at"),
    IndexModel([("at", DESCENDING)], name="at"),
]
RESTRICTION_INDEXES: Final = [
    IndexModel([("room", ASCENDING), ("kind", ASCENDING), ("at", DESCENDING)], name="room_kind_at")
]
INVITATION_INDEXES: Final = [
    IndexModel([("user_id", ASCENDING), ("created_at", ASCENDING)], name="user_created"),
    IndexModel([("by", ASCENDING)], name="by"),
]


class MongoAccessStore(MongoCollections):
    def __init__(
        self,
        client: AsyncMongoClient[Document],
        database: str,
        *,
        timeout_seconds: float = 2.0,
        write_concern: str = "majority",
    ) -> None:
        super().__init__(client, database, timeout_seconds=timeout_seconds, write_concern_name=write_concern)
        self._members = self.db.get_collection("room_members")
        self._invitations = self.db.get_collection("invitations")
        self._restrictions = self.db.get_collection("restrictions")
        self._audit = self.db.get_collection("audit")

    async def start(self) -> None:
        async with self.indexing():
            await self._members.create_indexes(MEMBER_INDEXES)
            await self._invitations.create_indexes(INVITATION_INDEXES)
            await self._audit.create_indexes(AUDIT_INDEXES)
            await self._restrictions.create_indexes(RESTRICTION_INDEXES)

    async def set_role(self, room: str, user_id: str, role: str) -> None:
        async with self.guard("set_role"):
            await self._members.update_one(
                {"_id": _key(room, user_id)},
                {
                    "$set": {"role": role},
                    "$setOnInsert": {"room": room, "user_id": user_id, "since": now_ms()},
                },
                upsert=True,
            )

    async def role(self, room: str, user_id: str) -> str | None:
        async with self.guard("role"):
            document = await self._members.find_one({"_id": _key(room, user_id)}, {"role": 1})
        return None if document is None else str(document["role"])

    async def remove_member(self, room: str, user_id: str) -> bool:
        async with self.guard("remove_member"):
            result = await self._members.delete_one({"_id": _key(room, user_id)})
        return result.deleted_count == 1

    async def rooms_of(self, user_id: str, *, prefix: str = "") -> list[Membership]:
        query: dict[str, Any] = {"user_id": user_id}
        if prefix:
            query["room"] = {"$regex": f"^{re.escape(prefix)}"}
        async with self.guard("rooms_of"):
            cursor = self._members.find(query).sort("room", ASCENDING)
            return [_membership(document) async for document in cursor]

    async def invite(self, invitation: Invitation) -> bool:
        document = {
            "_id": _key(invitation.room, invitation.user_id),
            "room": invitation.room,
            "user_id": invitation.user_id,
            "by": invitation.by,
            "by_name": invitation.by_name,
            "created_at": invitation.created_at,
        }
        try:
            async with self.guard("invite"):
                await self._invitations.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def take_invitation(self, room: str, user_id: str) -> Invitation | None:
        async with self.guard("take_invitation"):
            document = await self._invitations.find_one_and_delete({"_id": _key(room, user_id)})
        return None if document is None else _invitation(document)

    async def invitations_for(self, user_id: str) -> list[Invitation]:
        async with self.guard("invitations_for"):
            cursor = self._invitations.find({"user_id": user_id}).sort(
                [("created_at", ASCENDING), ("room", ASCENDING)]
            )
            return [_invitation(document) async for document in cursor]

    async def forget_user(self, user_id: str) -> None:
        async with self.guard("forget_user"):
            await self._members.delete_many({"user_id": user_id})
            await self._invitations.delete_many({"$or": [{"user_id": user_id}, {"by": user_id}]})

    async def restrict(self, restriction: Restriction) -> None:
        key = f"{_key(restriction.room, restriction.user_id)} {restriction.kind}"
        document = dataclasses.asdict(restriction)
        async with self.guard("restrict"):
            await self._restrictions.replace_one({"_id": key}, document, upsert=True)

    async def lift(self, room: str, user_id: str, kind: str) -> bool:
        async with self.guard("lift"):
            result = await self._restrictions.delete_one({"_id": f"{_key(room, user_id)} {kind}"})
        return result.deleted_count == 1

    async def restrictions(self, room: str, user_id: str, *, now: int) -> list[Restriction]:
        keys = [f"{_key(room, user_id)} {kind}" for kind in ("ban", "mute")]
        query = {"_id": {"$in": keys}} | _holding(now)
        async with self.guard("restrictions"):
            cursor = self._restrictions.find(query, {"_id": 0}).sort("kind", ASCENDING)
            return [Restriction(**document) async for document in cursor]

    async def room_restrictions(self, room: str, kind: str, *, now: int, limit: int) -> list[Restriction]:
        query = {"room": room, "kind": kind} | _holding(now)
        async with self.guard("room_restrictions"):
            cursor = self._restrictions.find(query, {"_id": 0})
            cursor = cursor.sort([("at", DESCENDING), ("user_id", DESCENDING)]).limit(limit)
            return [Restriction(**document) async for document in cursor]

    async def record(self, entry: AuditEntry) -> None:
        document = dataclasses.asdict(entry)
        document["_id"] = document.pop("id")
        async with self.guard("record"):
            await self._audit.insert_one(document)

    async def audit(self, *, room: str | None, limit: int) -> list[AuditEntry]:
        query = {} if room is None else {"room": room}
        async with self.guard("audit"):
            cursor = self._audit.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
            return [_entry(document) async for document in cursor]


def _entry(document: dict[str, Any]) -> AuditEntry:
    fields = dict(document)
    return AuditEntry(id=fields.pop("_id"), **fields)


def _holding(now: int) -> dict[str, Any]:
    """Restrictions that hold at ``now`` (ms): without an end, or ending later."""
    return {"$or": [{"until": None}, {"until": {"$gt": now}}]}


def _key(room: str, user_id: str) -> str:
    return f"{room} {user_id}"


def _membership(document: Mapping[str, Any]) -> Membership:
    return Membership(document["room"], document["user_id"], document["role"], document["since"])


def _invitation(document: Mapping[str, Any]) -> Invitation:
    return Invitation(
        document["room"], document["user_id"], document["by"], document["by_name"], document["created_at"]
    )
