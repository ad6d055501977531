"""The settings choose the backends: embedded defaults without services, MongoDB and Redis drivers with
them, one MongoDB client for every Mongo-backed store, and given parts winning over the settings."""

from __future__ import annotations

import pytest

from chatio.backends import choose_backends
from chatio.config import Secret, Settings
from chatio.presence import MemoryPresence
from chatio.presence.redis import RedisPresence
from chatio.ratelimit import TokenBucketLimiter
from chatio.ratelimit.redis import RedisRateLimiter
from chatio.store.access_memory import MemoryAccessStore
from chatio.store.access_mongo import MongoAccessStore
from chatio.store.accounts_memory import MemoryAccountStore
from chatio.store.accounts_mongo import MongoAccountStore
from chatio.store.encrypted import EncryptingStore
from chatio.store.memory import MemoryStore
from chatio.store.mongo import MongoStore

pytestmark = pytest.mark.unit

# Nothing listens there: choosing backends opens no connection (pymongo and redis-py connect lazily).
NOWHERE_MONGO = Secret("mongodb://127.0.0.1:1/")
NOWHERE_REDIS = Secret("redis://127.0.0.1:1/0")
KEY = Secret("k1:" + "A" * 43 + "=")


def test_embedded_defaults_without_services() -> None:
    backends = choose_backends(Settings(pod_name="t"))
    assert isinstance(backends.store, MemoryStore)
    assert isinstance(backends.accounts, MemoryAccountStore)
    assert isinstance(backends.access, MemoryAccessStore)
    assert isinstance(backends.presence, MemoryPresence)
    assert isinstance(backends.limiter, TokenBucketLimiter)
    assert backends.cluster is None and backends.mongo is None


async def test_every_mongo_store_shares_one_client() -> None:
    backends = choose_backends(Settings(pod_name="t", mongodb_uri=NOWHERE_MONGO, mongodb_database="x"))
    assert isinstance(backends.store, MongoStore)
    assert isinstance(backends.accounts, MongoAccountStore)
    assert isinstance(backends.access, MongoAccessStore)
    assert backends.mongo is not None
    assert backends.accounts.client is backends.mongo and backends.access.client is backends.mongo
    assert backends.store._client is backends.mongo
    await backends.mongo.close()


async def test_redis_drivers_with_redis() -> None:
    backends = choose_backends(Settings(pod_name="t", redis_url=NOWHERE_REDIS))
    assert isinstance(backends.presence, RedisPresence)
    assert isinstance(backends.limiter, RedisRateLimiter)
    assert backends.cluster is not None
    await backends.cluster.redis.aclose()


def test_given_parts_win_and_encryption_wraps_the_store() -> None:
    store, presence = MemoryStore(), MemoryPresence("t")
    backends = choose_backends(Settings(pod_name="t", message_key=KEY), store=store, presence=presence)
    assert isinstance(backends.store, EncryptingStore)
    assert backends.presence is presence
