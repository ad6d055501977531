"""MongoDB :class:`~chatio.store.Store` on pymongo's ``AsyncMongoClient``.

Collections (ids are the 24-hex strings of :func:`~chatio.store.new_id`, rooms use their own id):

``users``     ``{_id, username, display_name, email, created_at, guest}``; unique ``username``.
``rooms``     ``{_id: room id, name, public, owner, created_at, receipts?}``.
``messages``  ``{_id, room, seq, user_id, user, display_name?, text, ts, client_msg_id?, reply_to?: {id,
              seq, user_id, user, excerpt}, edited_at?, deleted?, reactions?: {emoji: [username]}, change?,
              grams}``; unique ``(room, seq)``. A deleted message keeps its document (the tombstone) with an
              empty text. ``grams``: the text's n-grams for search (:mod:`chatio.store.mongo_search`), index
              ``(grams, room)``.
``reads``     ``{_id: "<room> <user_id>", room, user_id, user, seq}``: read marks, raised with ``$max``;
              indexes ``(room, seq)`` and ``(user_id, room)``.
``room_changes`` ``{_id: room id, change}``: the room's latest change number (edits, deletions, reactions).

Reply counts are not stored: a page counts the replies to its messages with one aggregation on the
``(room, reply_to.id)`` index, so a repeated reply or a retried write can never count twice.

Messages go through :class:`~chatio.store.mongo_messages.GroupCommit`, whose docstring explains how seqs
stay gap-free across processes and how concurrent appends share one durable write.

Every operation runs under ``timeout_seconds`` (pymongo's client-side operation timeout, which also
bounds server selection, with an asyncio deadline a little later as a backstop) and turns any driver
error into :class:`~chatio.store.Unavailable`. The client reconnects by itself, so a store that saw
MongoDB go away works again, without a restart, once it is back.

Write concern: ``majority`` (the default) acknowledges a message once it is journaled on a majority of
the replica set; ``1`` once the primary applied it (a crash may lose the last ~100 ms). ``0`` is refused:
without acknowledgements the store cannot know what it stored, nor recognise a repeated client_msg_id.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError
from pymongo.monitoring import CommandListener

from chatio.store import (
    Conflict,
    Counts,
    Draft,
    Message,
    Page,
    ReadMark,
    Room,
    StoreError,
    User,
    new_id,
    ngrams,
    now_ms,
)
from chatio.store.mongo_base import Document, creating_indexes, guarded, mongo_client
from chatio.store.mongo_base import write_concern as write_concern_for
from chatio.store.mongo_messages import (
    GroupCommit,
    WriterStats,
    message_from_document,
)
from chatio.store.mongo_search import GRAMS_INDEX, WITHOUT_GRAMS, search_pipeline

MESSAGE_INDEXES: Final = [
    IndexModel([("room", ASCENDING), ("seq", ASCENDING)], name="room_seq", unique=True),
    IndexModel([("room", ASCENDING), ("ts", ASCENDING)], name="room_ts"),
    IndexModel([("user_id", ASCENDING)], name="user_id"),
    GRAMS_INDEX,
    IndexModel(
        [("room", ASCENDING), ("change", ASCENDING)],
        name="room_change",
        partialFilterExpression={"change": {"$gt": 0}},
    ),
    IndexModel(
        [("room", ASCENDING), ("reply_to.id", ASCENDING)],
        name="room_reply_to",
        partialFilterExpression={"reply_to": {"$exists": True}},
    ),
    IndexModel(
        [("room", ASCENDING), ("user_id", ASCENDING), ("client_msg_id", ASCENDING)],
        name="room_user_client_msg_id",
        unique=True,
        partialFilterExpression={"client_msg_id": {"$exists": True}},
    ),
]
#: The shard key of ``messages`` when MongoDB is sharded (docs/scaling.md): a room's messages stay together,
#: and every unique index above starts with it, as MongoDB requires (tests/store/test_shard_key.py checks).
#: The other collections stay unsharded (docs/scaling.md says why).
MESSAGE_SHARD_KEY: Final = (("room", ASCENDING),)
USER_INDEXES: Final = [
    IndexModel([("username", ASCENDING)], name="username", unique=True),
    # For presence, which keeps an ``online`` flag on users; the store itself never sets it.
    IndexModel([("online", ASCENDING)], name="online"),
]
READ_INDEXES: Final = [
    IndexModel([("room", ASCENDING), ("seq", DESCENDING)], name="room_seq"),
    IndexModel([("user_id", ASCENDING), ("room", ASCENDING)], name="user_room"),
]
ROOM_INDEXES: Final = [
    IndexModel([("name", ASCENDING)], name="name"),
    IndexModel([("public", ASCENDING), ("_id", ASCENDING)], name="public_id"),
]


class MongoStore:
    """Durable :class:`~chatio.store.Store`. Build it, ``await start()``, use it, ``await close()``."""

    def __init__(
        self,
        uri: str | AsyncMongoClient[Document],
        database: str = "chatio",
        *,
        write_concern: str = "majority",
        timeout_seconds: float = 2.0,
        group_commit_max_wait_ms: float = 2.0,
        group_commit_max_batch: int = 500,
        event_listeners: Sequence[CommandListener] = (),
    ) -> None:
        concern = write_concern_for(write_concern)
        self._timeout = timeout_seconds
        # A URI: a client of the store's own, closed with it. A client: shared, and closed by its owner.
        self._owns_client = isinstance(uri, str)
        self._client = (
            mongo_client(uri, timeout_seconds=timeout_seconds, event_listeners=event_listeners)
            if isinstance(uri, str)
            else uri
        )
        db = self._client.get_database(database, write_concern=concern)
        self._users = db.get_collection("users")
        self._rooms = db.get_collection("rooms")
        self._messages = db.get_collection("messages")
        self._changes = db.get_collection("room_changes")
        self._reads = db.get_collection("reads")
        self._writer = GroupCommit(
            self._messages,
            timeout=timeout_seconds,
            max_wait=group_commit_max_wait_ms / 1000,
            max_batch=group_commit_max_batch,
            majority=concern.document.get("w") == "majority",
        )
        self._started = False

    @property
    def writer_stats(self) -> WriterStats:
        """What the group commit writer did so far (batches, conflicts with other writers, repeats)."""
        return self._writer.stats

    def _guard(self, what: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Bound the block by the store timeout and turn driver errors into ``Unavailable``."""
        return guarded(what, self._timeout)

    async def start(self) -> None:
        async with creating_indexes(self._client, self._timeout):
            await self._messages.create_indexes(MESSAGE_INDEXES)
            # The text index of earlier versions: n-grams replaced it, and it would cost every insert.
            if "text" in await self._messages.index_information():
                await self._messages.drop_index("text")
            await self._users.create_indexes(USER_INDEXES)
            await self._rooms.create_indexes(ROOM_INDEXES)
            await self._reads.create_indexes(READ_INDEXES)
        self._writer.start()
        self._started = True

    async def close(self) -> None:
        await self._writer.close()
        if self._owns_client:
            await self._client.close()

    async def ping(self) -> None:
        async with self._guard("ping"):
            await self._client.admin.command("ping")

    # --- users and rooms --------------------------------------------------------------------------------

    async def create_user(
        self, username: str, display_name: str, email: str | None = None, *, guest: bool = False
    ) -> User:
        user = User(new_id(), username, display_name, email, now_ms(), guest)
        document = {
            "_id": user.id,
            "username": username,
            "display_name": display_name,
            "email": email,
            "created_at": user.created_at,
            "guest": guest,
        }
        try:
            async with self._guard("create_user"):
                await self._users.insert_one(document)
        except DuplicateKeyError:
            raise Conflict(f"username {username!r} is taken") from None
        return user

    async def get_user(self, user_id: str) -> User | None:
        _literal(user_id)
        async with self._guard("get_user"):
            document = await self._users.find_one({"_id": user_id})
        return None if document is None else _user(document)

    async def find_user(self, username: str) -> User | None:
        _literal(username)
        async with self._guard("find_user"):
            document = await self._users.find_one({"username": username})
        return None if document is None else _user(document)

    async def find_users(self, usernames: Sequence[str]) -> list[User]:
        _literal(*usernames)
        if not usernames:
            return []
        async with self._guard("find_users"):
            cursor = self._users.find({"username": {"$in": list(dict.fromkeys(usernames))}})
            return [_user(document) async for document in cursor]

    async def users(self, *, prefix: str = "", after: str | None = None, limit: int) -> list[User]:
        _literal(prefix, *(() if after is None else (after,)))
        # An anchored, escaped prefix and a lower bound: both ride the unique username index.
        bounds: dict[str, Any] = {"$regex": "^" + re.escape(prefix)} if prefix else {}
        if after is not None:
            bounds["$gt"] = after
        query = {"username": bounds} if bounds else {}
        async with self._guard("users"):
            cursor = self._users.find(query).sort("username", ASCENDING).limit(max(0, limit))
            return [_user(document) async for document in cursor]

    async def create_room(self, room_id: str, name: str, *, public: bool, owner: str | None) -> Room:
        room = Room(room_id, name, public, owner, now_ms())
        document = {
            "_id": room_id,
            "name": name,
            "public": public,
            "owner": owner,
            "created_at": room.created_at,
        }
        try:
            async with self._guard("create_room"):
                await self._rooms.insert_one(document)
        except DuplicateKeyError:
            raise Conflict(f"room {room_id!r} exists") from None
        return room

    async def get_room(self, room_id: str) -> Room | None:
        _literal(room_id)
        async with self._guard("get_room"):
            document = await self._rooms.find_one({"_id": room_id})
        return None if document is None else _room(document)

    async def public_rooms(self, *, limit: int, after: str | None = None) -> list[Room]:
        if limit <= 0:
            return []
        query: dict[str, Any] = {"public": True}
        if after is not None:
            _literal(after)
            query["_id"] = {"$gt": after}
        async with self._guard("public_rooms"):
            cursor = self._rooms.find(query).sort("_id", ASCENDING).limit(limit)
            return [_room(document) async for document in cursor]

    async def set_receipts(self, room_id: str, receipts: bool) -> Room | None:
        _literal(room_id)
        async with self._guard("set_receipts"):
            document = await self._rooms.find_one_and_update(
                {"_id": room_id}, {"$set": {"receipts": receipts}}, return_document=ReturnDocument.AFTER
            )
        return None if document is None else _room(document)

    async def set_retention(self, room_id: str, days: int | None) -> Room | None:
        _literal(room_id)
        async with self._guard("set_retention"):
            document = await self._rooms.find_one_and_update(
                {"_id": room_id}, {"$set": {"retention_days": days}}, return_document=ReturnDocument.AFTER
            )
        return None if document is None else _room(document)

    async def room_ids(self, *, after: str | None, limit: int) -> list[str]:
        query: dict[str, Any] = {} if after is None else {"_id": {"$gt": after}}
        async with self._guard("room_ids"):
            cursor = self._rooms.find(query, {"_id": 1}).sort("_id", ASCENDING).limit(limit)
            return [document["_id"] async for document in cursor]

    async def expire(self, room: str, before_ts: int) -> int:
        _literal(room)
        async with self._guard("expire"):
            newest = await self._messages.find_one({"room": room}, {"seq": 1}, sort=[("seq", DESCENDING)])
            if newest is None:
                return 0
            old = {"room": room, "ts": {"$lt": before_ts}, "seq": {"$lt": newest["seq"]}}
            kept = await self._messages.find_one(
                {"room": room, "$nor": [old]}, {"seq": 1}, sort=[("seq", ASCENDING)]
            )
            result = await self._messages.delete_many(old)
            if result.deleted_count and kept is not None:
                await self._messages.update_many(
                    {"room": room, "reply_to.seq": {"$lt": kept["seq"]}}, {"$set": {"reply_to.excerpt": None}}
                )
        return result.deleted_count

    # --- messages ---------------------------------------------------------------------------------------

    async def append(self, draft: Draft) -> Message:
        if not self._started:
            raise StoreError("MongoStore.append before start()")
        _literal(draft.room, draft.user_id, draft.user, draft.text)
        if draft.client_msg_id is not None:
            _literal(draft.client_msg_id)
        return await self._writer.submit(draft)

    async def page(
        self, room: str, *, before: int | None = None, after: int | None = None, limit: int
    ) -> Page:
        _literal(room)
        bounds: dict[str, int] = {}
        if before is not None:
            bounds["$lt"] = before
        if after is not None:
            bounds["$gt"] = after
        query: dict[str, Any] = {"room": room, "seq": bounds} if bounds else {"room": room}
        # One more than asked tells whether there is more in the direction of paging.
        direction = ASCENDING if after is not None else DESCENDING
        async with self._guard("page"):
            cursor = self._messages.find(query, WITHOUT_GRAMS).sort("seq", direction).limit(max(0, limit) + 1)
            documents = [document async for document in cursor]
            chosen = await self._with_reply_counts(room, documents[: max(0, limit)])
        if direction == DESCENDING:
            chosen.reverse()
        return Page(chosen, len(documents) > limit)

    async def search(
        self, query: str, *, rooms: Sequence[str] | None, limit: int, skip: int = 0
    ) -> list[Message]:
        plan = ngrams.plan(query)
        if plan.empty or limit <= 0 or (rooms is not None and not rooms):
            return []
        if rooms is not None:
            _literal(*rooms)
        async with self._guard("search"):
            cursor = await self._messages.aggregate(search_pipeline(plan, rooms, limit=limit, skip=skip))
            documents = [document async for document in cursor]
            by_room: dict[str, list[Document]] = {}
            for document in documents:
                by_room.setdefault(document["room"], []).append(document)
            counted = {
                message.id: message
                for room, found in by_room.items()
                for message in await self._with_reply_counts(room, found)
            }
        return [counted[document["_id"]] for document in documents]

    # --- changes ----------------------------------------------------------------------------------------

    async def get_message(self, room: str, message_id: str) -> Message | None:
        _literal(room, message_id)
        async with self._guard("get_message"):
            document = await self._messages.find_one({"_id": message_id, "room": room}, WITHOUT_GRAMS)
            return None if document is None else (await self._with_reply_counts(room, [document]))[0]

    async def edit(self, room: str, message_id: str, text: str) -> Message | None:
        _literal(room, message_id, text)
        return await self._change(
            room,
            message_id,
            {},
            lambda change: {
                "$set": {
                    "text": text,
                    "grams": ngrams.grams(text),
                    "edited_at": now_ms(),
                    "change": change,
                }
            },
        )

    async def delete(self, room: str, message_id: str) -> Message | None:
        _literal(room, message_id)
        tombstone = await self._change(
            room,
            message_id,
            {},
            lambda change: {
                "$set": {"text": "", "grams": [], "deleted": True, "edited_at": now_ms(), "change": change},
                "$unset": {"reactions": ""},
            },
        )
        async with self._guard("delete"):
            if tombstone is not None:
                await self._messages.update_many(
                    {"room": room, "reply_to.id": message_id}, {"$set": {"reply_to.excerpt": None}}
                )
        return tombstone if tombstone is not None else await self.get_message(room, message_id)

    async def react(self, room: str, message_id: str, emoji: str, user: str, *, add: bool) -> Message | None:
        _literal(room, message_id, emoji, user)
        if "." in emoji or emoji.startswith("$"):
            raise ValueError(f"not an emoji: {emoji!r}")
        field = f"reactions.{emoji}"
        condition = {field: {"$ne": user}} if add else {field: user}
        operation = "$addToSet" if add else "$pull"
        changed = await self._change(
            room, message_id, condition, lambda change: {operation: {field: user}, "$set": {"change": change}}
        )
        if changed is not None:
            return changed
        current = await self.get_message(room, message_id)
        return None if current is None or current.deleted else current

    async def _change(
        self,
        room: str,
        message_id: str,
        condition: dict[str, Any],
        update: Callable[[int], dict[str, Any]],
    ) -> Message | None:
        """Apply ``update(next change number)`` to the live message matching ``condition``; None when none
        matched (a change number may then go unused: numbers only ever need to grow)."""
        async with self._guard("change"):
            counter = await self._changes.find_one_and_update(
                {"_id": room}, {"$inc": {"change": 1}}, upsert=True, return_document=ReturnDocument.AFTER
            )
            assert counter is not None  # an upsert returning the document after it
            document = await self._messages.find_one_and_update(
                {"_id": message_id, "room": room, "deleted": {"$ne": True}, **condition},
                update(int(counter["change"])),
                projection=WITHOUT_GRAMS,
                return_document=ReturnDocument.AFTER,
            )
            return None if document is None else (await self._with_reply_counts(room, [document]))[0]

    async def changes(self, room: str, *, after_change: int, upto_seq: int, limit: int) -> Page:
        _literal(room)
        query = {"room": room, "change": {"$gt": after_change}, "seq": {"$lte": upto_seq}}
        async with self._guard("changes"):
            cursor = (
                self._messages.find(query, WITHOUT_GRAMS).sort("change", ASCENDING).limit(max(0, limit) + 1)
            )
            documents = [document async for document in cursor]
            chosen = await self._with_reply_counts(room, documents[: max(0, limit)])
        return Page(chosen, len(documents) > limit)

    async def last_change(self, room: str) -> int:
        _literal(room)
        async with self._guard("last_change"):
            counter = await self._changes.find_one({"_id": room})
        return 0 if counter is None else int(counter["change"])

    async def _with_reply_counts(self, room: str, documents: list[Document]) -> list[Message]:
        """``documents`` as messages, each with the number of replies stored for it."""
        if not documents:
            return []
        ids = [document["_id"] for document in documents]
        pipeline: list[dict[str, Any]] = [
            {"$match": {"room": room, "reply_to.id": {"$in": ids}}},
            {"$group": {"_id": "$reply_to.id", "n": {"$sum": 1}}},
        ]
        counts = {row["_id"]: row["n"] async for row in await self._messages.aggregate(pipeline)}
        return [message_from_document(document, counts.get(document["_id"], 0)) for document in documents]

    # --- read marks ---------------------------------------------------------------------------------------

    async def mark_read(self, room: str, user_id: str, user: str, seq: int) -> int:
        _literal(room, user_id, user)
        key = f"{room} {user_id}"  # room ids hold no space
        update = {
            "$max": {"seq": seq},
            "$set": {"user": user},
            "$setOnInsert": {"room": room, "user_id": user_id},
        }
        async with self._guard("mark_read"):
            for attempt in range(2):
                try:
                    document = await self._reads.find_one_and_update(
                        {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER
                    )
                    break
                except DuplicateKeyError:  # two first marks at once: the other upsert won, update it
                    if attempt:
                        raise
        assert document is not None
        return int(document["seq"])

    async def last_read(self, room: str, user_id: str) -> int | None:
        _literal(room, user_id)
        async with self._guard("last_read"):
            document = await self._reads.find_one({"_id": f"{room} {user_id}"})
        return None if document is None else int(document["seq"])

    async def read_marks(self, room: str, *, limit: int) -> list[ReadMark]:
        _literal(room)
        async with self._guard("read_marks"):
            cursor = (
                self._reads.find({"room": room}).sort([("seq", DESCENDING), ("user", ASCENDING)]).limit(limit)
            )
            return [_read_mark(document) async for document in cursor]

    async def read_rooms(self, user_id: str, *, limit: int) -> list[ReadMark]:
        _literal(user_id)
        async with self._guard("read_rooms"):
            cursor = self._reads.find({"user_id": user_id}).sort("room", ASCENDING).limit(limit)
            return [_read_mark(document) async for document in cursor]

    async def unread(self, room: str, user_id: str, after_seq: int, *, cap: int) -> int:
        _literal(room, user_id)
        query = {
            "room": room,
            "seq": {"$gt": after_seq},
            "user_id": {"$ne": user_id},
            "deleted": {"$ne": True},
        }
        async with self._guard("unread"):
            return await self._messages.count_documents(query, limit=cap)

    async def counts(self) -> Counts:
        async with self._guard("counts"):
            users = await self._users.estimated_document_count()
            rooms = await self._rooms.estimated_document_count()
            messages = await self._messages.estimated_document_count()
        return Counts(users, rooms, messages)


def _literal(*values: str) -> None:
    """Refuse anything but strings where a query or document takes caller input: a dict there would be
    read as query operators. The schemas at the edge already refuse them; this keeps the store safe alone.
    """
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")


def _user(document: Mapping[str, Any]) -> User:
    return User(
        id=document["_id"],
        username=document["username"],
        display_name=document["display_name"],
        email=document.get("email"),
        created_at=document["created_at"],
        guest=bool(document.get("guest", False)),
    )


def _room(document: Mapping[str, Any]) -> Room:
    return Room(
        id=document["_id"],
        name=document["name"],
        public=bool(document["public"]),
        owner=document.get("owner"),
        created_at=document["created_at"],
        receipts=bool(document.get("receipts", True)),
        retention_days=document.get("retention_days"),
    )


def _read_mark(document: Mapping[str, Any]) -> ReadMark:
    return ReadMark(document["room"], document["user_id"], document["user"], int(document["seq"]))
