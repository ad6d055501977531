"""One contract for every RateLimiter: the token bucket of one process and the GCRA in Redis (a single
Redis and a Redis Cluster); then what
only Redis gives: one budget across processes, and a local fallback while Redis is away."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from chatio.ratelimit import RateLimiter, TokenBucketLimiter
from chatio.ratelimit.redis import RedisRateLimiter
from chatio.redisconn import RedisClient, connect
from tests.services import REDIS_KINDS
from tools.devservices import RedisProcess

RATE = 120  # a minute: a burst of 120, then one every 0.5 s (the burst takes far less)
INTERVAL = 60 / RATE

LimiterFactory = Callable[[int], RateLimiter]


@pytest.fixture
async def redis_client(any_redis_url: str) -> AsyncIterator[RedisClient]:
    client = connect(any_redis_url, timeout=0.5, decode=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", *REDIS_KINDS])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[LimiterFactory]:
    if request.param == "memory":
        yield TokenBucketLimiter
        return
    url = request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
    client = connect(url, timeout=0.5, decode=True)
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield lambda rate: RedisRateLimiter(client, rate, prefix=prefix)
    finally:
        await client.aclose()


async def spend(limiter: RateLimiter, key: str, times: int) -> list[float]:
    return [await limiter.acquire(key) for _ in range(times)]


async def test_a_burst_of_the_rate_then_one_per_interval(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(RATE)
    assert await spend(limiter, "alice", RATE) == [0.0] * RATE
    wait = await limiter.acquire("alice")
    assert 0 < wait <= INTERVAL + 0.01
    await asyncio.sleep(wait + 0.02)
    assert await limiter.acquire("alice") == 0.0
    assert await limiter.acquire("alice") > 0


async def test_keys_have_budgets_of_their_own(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(3)
    assert await spend(limiter, "alice", 3) == [0.0, 0.0, 0.0]
    wait = await limiter.acquire("alice")
    assert 19.0 < wait <= 20.0
    assert await limiter.acquire("bob") == 0.0


async def test_refused_attempts_do_not_cost(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(RATE)
    await spend(limiter, "alice", RATE)
    first = await limiter.acquire("alice")
    for _ in range(20):
        await limiter.acquire("alice")
    await asyncio.sleep(first + 0.02)
    assert await limiter.acquire("alice") == 0.0


@pytest.mark.redis
async def test_processes_share_one_budget(redis_client: RedisClient) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    pod_a = RedisRateLimiter(redis_client, 10, prefix=prefix)
    pod_b = RedisRateLimiter(redis_client, 10, prefix=prefix)
    allowed = [await (pod_a if i % 2 else pod_b).acquire("alice") == 0.0 for i in range(20)]
    assert allowed.count(True) == 10
    key = await redis_client.get(f"{prefix}:rate:alice")
    ttl = await redis_client.pttl(f"{prefix}:rate:alice")
    assert key is not None and 0 < ttl <= 60_000  # the key expires once the budget is full again


@pytest.mark.redis
async def test_while_redis_is_away_each_process_limits_alone(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    client = connect(server.url, timeout=0.3, decode=True)
    try:
        limiter = RedisRateLimiter(client, 5, prefix="t")
        assert await spend(limiter, "alice", 2) == [0.0, 0.0]
        server.kill()
        outcomes = await spend(limiter, "alice", 6)
        assert outcomes[:5] == [0.0] * 5 and outcomes[5] > 0  # the local bucket, full budget
        server.start()
        await asyncio.sleep(1.1)  # the fallback lasts FALLBACK_SECONDS, then Redis is asked again
        assert await spend(limiter, "alice", 5) == [0.0] * 5
        assert await limiter.acquire("alice") > 0
        assert await client.exists("t:rate:alice") == 1
    finally:
        await client.aclose()
        server.stop()


@pytest.mark.redis
async def test_redis_py_failing_mid_reconnect_is_an_outage_too(redis_url: str) -> None:
    client = connect(redis_url, timeout=0.5, decode=True)
    limiter = RedisRateLimiter(client, 5, prefix="t-broken")

    async def fails_as_redis_py_did(**_kwargs: object) -> int:
        raise AttributeError("'NoneType' object has no attribute 'writelines'")

    limiter._script = fails_as_redis_py_did  # type: ignore[assignment]  # the fault, injected
    try:
        assert await spend(limiter, "alice", 5) == [0.0] * 5  # the local bucket answers
        assert await limiter.acquire("alice") > 0
    finally:
        await client.aclose()


async def test_the_token_bucket_forgets_idle_users_without_scanning_on_every_call() -> None:
    from chatio.ratelimit import SWEEP_ABOVE, TokenBucketLimiter

    now = [0.0]
    limiter = TokenBucketLimiter(60, clock=lambda: now[0])
    for user in range(SWEEP_ABOVE + 500):
        assert await limiter.acquire(f"user:{user}") == 0.0
    assert len(limiter._buckets) == SWEEP_ABOVE + 500  # nothing idle long enough yet
    now[0] = 61.0  # every bucket is full again
    await limiter.acquire("user:new")
    assert len(limiter._buckets) == 1
    swept_at = limiter._next_sweep
    await limiter.acquire("user:other")
    assert limiter._next_sweep == swept_at  # no second sweep within the second
