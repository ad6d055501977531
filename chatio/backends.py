"""Which backend answers each protocol, chosen from the settings. Part of the composition root: with
:mod:`chatio.app`, the only module that names concrete drivers.

=================  ==========================  =============================================
protocol           embedded default            production driver (setting)
=================  ==========================  =============================================
Store              MemoryStore                 MongoStore (``CHATIO_MONGODB_URI``)
AccountStore       MemoryAccountStore          MongoAccountStore (``CHATIO_MONGODB_URI``)
AccessStore        MemoryAccessStore           MongoAccessStore (``CHATIO_MONGODB_URI``)
Presence           MemoryPresence              RedisPresence (``CHATIO_REDIS_URL``)
RateLimiter        TokenBucketLimiter          RedisRateLimiter (``CHATIO_REDIS_URL``)
Socket.IO manager  FastManager (in-process)    ClusterManager (``CHATIO_REDIS_URL``), or
                                               ShardedManager (and ``CHATIO_REDIS_FANOUT=sharded``)
=================  ==========================  =============================================

Every MongoDB-backed store shares one client (one connection pool), opened and closed here;
``CHATIO_MESSAGE_KEY`` wraps the store in encryption at rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from pymongo import AsyncMongoClient

from chatio.chat.ports import USER_ROOM_PREFIX
from chatio.cluster import Cluster
from chatio.config import Settings
from chatio.metrics import Metrics
from chatio.presence import MemoryPresence, Presence
from chatio.ratelimit import RateLimiter, TokenBucketLimiter
from chatio.ratelimit.redis import RedisRateLimiter
from chatio.store import Store
from chatio.store.access import AccessStore
from chatio.store.access_memory import MemoryAccessStore
from chatio.store.access_mongo import MongoAccessStore
from chatio.store.accounts import AccountStore
from chatio.store.accounts_memory import MemoryAccountStore
from chatio.store.accounts_mongo import MongoAccountStore
from chatio.store.cipher import MessageCipher
from chatio.store.encrypted import EncryptingStore
from chatio.store.memory import MemoryStore
from chatio.store.mongo import MongoStore
from chatio.store.mongo_base import Document, mongo_client
from chatio.transport import FastManager
from chatio.transport.fanout import ClusterManager
from chatio.transport.sharded import ShardedManager


@dataclasses.dataclass(frozen=True, slots=True)
class Backends:
    """The parts behind the protocols, and the connections they share. ``lifetime`` starts and ends them."""

    settings: Settings
    store: Store
    accounts: AccountStore
    access: AccessStore
    presence: Presence
    limiter: RateLimiter
    cluster: Cluster | None
    mongo: AsyncMongoClient[Document] | None

    def manager(self, metrics: Metrics) -> Any:
        """python-socketio's client manager: in-process, or carried between processes by Redis."""
        settings = self.settings

        def delivered(event: str, count: int) -> None:
            if event == "message":
                metrics.messages_broadcast.inc(count)

        if settings.redis_url is None:
            return FastManager(fast=settings.fast_broadcast, on_delivered=delivered)
        kind = ShardedManager if settings.redis_fanout == "sharded" else ClusterManager
        manager = kind(
            settings.redis_url.reveal(),
            channel=settings.redis_prefix,
            timeout=settings.redis_timeout_seconds,
            user_room_prefix=USER_ROOM_PREFIX,
            fast=settings.fast_broadcast,
            on_delivered=delivered,
        )
        manager.on_received = metrics.fanout_received.inc
        return manager

    def address_limiter(self, rate: int) -> RateLimiter | None:
        """A limit per client address, shared by the cluster through Redis when there is one."""
        if not rate:
            return None
        if self.cluster is None:
            return TokenBucketLimiter(rate)
        return RedisRateLimiter(self.cluster.redis, rate, prefix=self.settings.redis_prefix)

    async def lifetime(self, _app: web.Application) -> AsyncIterator[None]:
        """An aiohttp ``cleanup_ctx``: the stores start before serving and close, with their client, after."""
        await self.store.start()
        await self.accounts.start()
        await self.access.start()
        yield
        await self.access.close()
        await self.accounts.close()
        await self.store.close()
        if self.mongo is not None:
            await self.mongo.close()


def choose_backends(
    settings: Settings,
    *,
    store: Store | None = None,
    accounts: AccountStore | None = None,
    access: AccessStore | None = None,
    presence: Presence | None = None,
    limiter: RateLimiter | None = None,
) -> Backends:
    """The backends ``settings`` describe; each given part replaces the one the settings would choose."""
    cluster = None if settings.redis_url is None else Cluster(settings)
    mongo = None
    if settings.mongodb_uri is not None and (store is None or accounts is None or access is None):
        mongo = mongo_client(settings.mongodb_uri.reveal(), timeout_seconds=settings.store_timeout_seconds)
    if mongo is not None:
        options: dict[str, Any] = {
            "timeout_seconds": settings.store_timeout_seconds,
            "write_concern": settings.mongodb_write_concern,
        }
        store = store or MongoStore(
            mongo,
            settings.mongodb_database,
            write_concern=settings.mongodb_write_concern,
            timeout_seconds=settings.store_timeout_seconds,
            group_commit_max_wait_ms=settings.group_commit_max_wait_ms,
            group_commit_max_batch=settings.group_commit_max_batch,
        )
        accounts = accounts or MongoAccountStore(mongo, settings.mongodb_database, **options)
        access = access or MongoAccessStore(mongo, settings.mongodb_database, **options)
    store = store or MemoryStore(max_messages_per_room=settings.memory_max_messages_per_room)
    if settings.message_key is not None:
        store = EncryptingStore(store, MessageCipher.from_setting(settings.message_key.reveal()))
    return Backends(
        settings=settings,
        store=store,
        accounts=accounts or MemoryAccountStore(),
        access=access or MemoryAccessStore(),
        presence=presence or (cluster.presence if cluster else MemoryPresence(settings.pod_name)),
        limiter=limiter
        or (cluster.limiter if cluster else TokenBucketLimiter(settings.rate_limit_per_minute)),
        cluster=cluster,
        mongo=mongo,
    )
