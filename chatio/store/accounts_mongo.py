"""MongoDB :class:`~chatio.store.accounts.AccountStore`.

Collections:

``accounts``        ``{_id: user id, password_hash, admin, created_at}``
``deleted_users``   ``{_id: user id, deleted_at}``
``refresh_tokens``  ``{_id: sha256 of the token, user_id, family, created_at, expires_at, expires (a date
                    for the TTL index), used, revoked}``; indexes on ``family`` and ``user_id``, and a TTL
                    index that lets MongoDB forget a token once it expired.

Writes use write concern ``majority`` by default: a rotation acknowledged before a failover is not lost
with it, so a rotated-away token cannot become redeemable again.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Final

from pymongo import ASCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from chatio.store import Conflict, now_ms
from chatio.store.accounts import Account, Redeemed, Redemption, RefreshToken
from chatio.store.mongo_base import Document, MongoCollections

TOKEN_INDEXES: Final = [
    IndexModel([("family", ASCENDING)], name="family"),
    IndexModel([("user_id", ASCENDING)], name="user_id"),
    IndexModel([("expires", ASCENDING)], name="expires_ttl", expireAfterSeconds=0),
]


class MongoAccountStore(MongoCollections):
    def __init__(
        self,
        client: AsyncMongoClient[Document],
        database: str,
        *,
        timeout_seconds: float = 2.0,
        write_concern: str = "majority",
    ) -> None:
        super().__init__(client, database, timeout_seconds=timeout_seconds, write_concern_name=write_concern)
        self._accounts = self.db.get_collection("accounts")
        self._deleted = self.db.get_collection("deleted_users")
        self._tokens = self.db.get_collection("refresh_tokens")

    async def start(self) -> None:
        async with self.indexing():
            await self._tokens.create_indexes(TOKEN_INDEXES)

    async def create_account(self, user_id: str, password_hash: str, *, admin: bool = False) -> Account:
        account = Account(user_id, password_hash, admin, now_ms())
        document = {
            "_id": user_id,
            "password_hash": password_hash,
            "admin": admin,
            "created_at": account.created_at,
        }
        try:
            async with self.guard("create_account"):
                await self._accounts.insert_one(document)
        except DuplicateKeyError:
            raise Conflict(f"user {user_id!r} has an account") from None
        return account

    async def get_account(self, user_id: str) -> Account | None:
        async with self.guard("get_account"):
            document = await self._accounts.find_one({"_id": user_id})
        if document is None:
            return None
        return Account(user_id, document["password_hash"], bool(document["admin"]), document["created_at"])

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        async with self.guard("set_password_hash"):
            await self._accounts.update_one({"_id": user_id}, {"$set": {"password_hash": password_hash}})

    async def set_admin(self, user_id: str, admin: bool) -> bool:
        async with self.guard("set_admin"):
            result = await self._accounts.update_one({"_id": user_id}, {"$set": {"admin": admin}})
        return result.matched_count == 1

    async def delete_account(self, user_id: str) -> None:
        # The tombstone first: from then on every token check refuses the user, whatever happens next.
        async with self.guard("delete_account"):
            await self._deleted.update_one(
                {"_id": user_id}, {"$setOnInsert": {"deleted_at": now_ms()}}, upsert=True
            )
            await self._accounts.delete_one({"_id": user_id})
            await self._tokens.delete_many({"user_id": user_id})

    async def is_deleted(self, user_id: str) -> bool:
        async with self.guard("is_deleted"):
            return await self._deleted.find_one({"_id": user_id}, {"_id": 1}) is not None

    async def add_refresh_token(self, token: RefreshToken) -> None:
        document = {
            "_id": token.token_hash,
            "user_id": token.user_id,
            "family": token.family,
            "created_at": token.created_at,
            "expires_at": token.expires_at,
            "expires": datetime.datetime.fromtimestamp(token.expires_at / 1000, tz=datetime.UTC),
            "used": False,
            "revoked": False,
        }
        async with self.guard("add_refresh_token"):
            await self._tokens.insert_one(document)

    async def redeem_refresh_token(self, token_hash: str, now: int) -> Redeemed:
        usable = {"_id": token_hash, "used": False, "revoked": False, "expires_at": {"$gt": now}}
        async with self.guard("redeem_refresh_token"):
            document = await self._tokens.find_one_and_update(
                usable, {"$set": {"used": True, "used_at": now}}, return_document=ReturnDocument.BEFORE
            )
            if document is not None:
                return Redeemed(Redemption.OK, _token(document))
            document = await self._tokens.find_one({"_id": token_hash})
        if document is None:
            return Redeemed(Redemption.UNKNOWN, None)
        if document["revoked"]:
            return Redeemed(Redemption.REVOKED, _token(document))
        if document["used"]:
            return Redeemed(Redemption.REUSED, _token(document))
        return Redeemed(Redemption.EXPIRED, _token(document))

    async def revoke_family(self, family: str) -> int:
        return await self._revoke({"family": family})

    async def revoke_user(self, user_id: str) -> int:
        return await self._revoke({"user_id": user_id})

    async def is_revoked(self, family: str) -> bool:
        async with self.guard("is_revoked"):
            return await self._tokens.find_one({"family": family, "revoked": True}, {"_id": 1}) is not None

    async def _revoke(self, which: dict[str, Any]) -> int:
        async with self.guard("revoke"):
            usable = await self._tokens.count_documents({**which, "used": False, "revoked": False})
            await self._tokens.update_many(which, {"$set": {"revoked": True}})
        return usable


def _token(document: Mapping[str, Any]) -> RefreshToken:
    return RefreshToken(
        token_hash=document["_id"],
        user_id=document["user_id"],
        family=document["family"],
        created_at=document["created_at"],
        expires_at=document["expires_at"],
    )
