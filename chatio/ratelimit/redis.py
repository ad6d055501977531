"""Rate limits shared by every process through Redis, so that connecting to several does not multiply them.

:class:`RedisRateLimiter` is the same limit as :class:`~chatio.ratelimit.TokenBucketLimiter` (``rate`` a
minute, bursting up to ``rate``) written as GCRA, the generic cell rate algorithm: one key per limited
thing holds its *theoretical arrival time*, updated by one Lua script on Redis's clock, so processes whose
clocks disagree still share one budget and the key expires by itself once the budget is full again. The
script touches that one key only, so on a Redis Cluster it runs on the key's node and keys spread evenly.

When Redis fails, the limiter falls back to a token bucket of this process (so limits still hold per
process) for ``FALLBACK_SECONDS`` before trying Redis again, and logs the outage once.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from chatio.ratelimit import TokenBucketLimiter
from chatio.redisconn import REDIS_ERRORS, Outage, RedisClient

log = logging.getLogger(__name__)

FALLBACK_SECONDS: Final = 1.0

# KEYS[1]: the key; ARGV: microseconds per token, burst -> 0 when allowed, else microseconds to wait.
# Times are microseconds on Redis's clock; string.format keeps them integral when stored.
_GCRA: Final = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local allowed_at = next_tat - burst * interval
if now < allowed_at then return allowed_at - now end
local ttl_ms = math.ceil((next_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', string.format('%.0f', ttl_ms))
return 0
"""


class RedisRateLimiter:
    """``rate_per_minute`` per key across the cluster; see the module docstring."""

    def __init__(self, redis: RedisClient, rate_per_minute: int, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:rate:"
        self._interval_us = round(60_000_000 / rate_per_minute)
        self._burst = rate_per_minute
        self._script = redis.register_script(_GCRA)
        self._fallback = TokenBucketLimiter(rate_per_minute)
        self._outage = Outage(log, "rate limits")
        self._retry_at = 0.0

    async def acquire(self, key: str) -> float:
        if self._outage.down and time.monotonic() < self._retry_at:
            return await self._fallback.acquire(key)
        try:
            wait_us = await self._script(keys=[self._prefix + key], args=[self._interval_us, self._burst])
        except REDIS_ERRORS as exc:
            self._outage.failed(exc)
            self._retry_at = time.monotonic() + FALLBACK_SECONDS
            return await self._fallback.acquire(key)
        self._outage.recovered()
        return int(wait_us) / 1_000_000
