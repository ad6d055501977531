"""Rate limiting behind a small protocol; the embedded default is a token bucket per key.

The Redis driver (one budget across processes) is :mod:`chatio.ratelimit.redis`; the per-address gate of
connections and logins is :mod:`chatio.ratelimit.gate`. May import :mod:`chatio.errors`,
:mod:`chatio.redisconn`, redis-py and (for the gate's client address) aiohttp; nothing of the chat domain.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Protocol

#: Buckets kept before idle, refilled ones are swept away.
SWEEP_ABOVE: Final = 10_000


class RateLimiter(Protocol):
    async def acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is available."""


class TokenBucketLimiter:
    """``rate_per_minute`` tokens a minute, bursting up to the same number, kept in this process.

    Idle buckets are forgotten once full, so memory follows the number of active keys.
    """

    def __init__(self, rate_per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = float(rate_per_minute)
        self._per_second = rate_per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._next_sweep = 0.0

    async def acquire(self, key: str) -> float:
        now = self._clock()
        tokens, stamp = self._buckets.get(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - stamp) * self._per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._per_second
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > SWEEP_ABOVE and now >= self._next_sweep:
            # At most one sweep a second: a sweep per call would cost O(active users) each time.
            self._next_sweep = now + 1.0
            self._forget_full(now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        full_after = self._capacity / self._per_second
        for key in [k for k, (_t, stamp) in self._buckets.items() if now - stamp >= full_after]:
            del self._buckets[key]
