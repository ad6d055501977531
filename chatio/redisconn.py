"""Redis connections for the cluster parts, and the log that keeps a Redis outage loud but readable.

``CHATIO_REDIS_URL`` is ``redis://``, ``rediss://`` or ``redis+sentinel://[:password@]h1:p1,h2:p2/db/name``
(the master ``name`` is required, see ``config.py``). Every command is bounded by
``CHATIO_REDIS_TIMEOUT_SECONDS`` and retried at most once: callers fall back or report instead of waiting.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final
from urllib.parse import unquote, urlparse

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

# What a Redis call may raise when the server is away: redis-py's own errors, and the OS's for sockets.
REDIS_ERRORS: Final = (RedisError, OSError)


def connect(url: str, *, timeout: float, retries: int = 1, decode: bool = False) -> Redis:
    """A client (with its own pool) for ``url``; it connects lazily and reconnects by itself.

    ``decode``: replies as ``str`` instead of ``bytes``.
    """
    options: dict[str, Any] = {
        "decode_responses": decode,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), retries),
    }
    if not url.startswith("redis+sentinel://"):
        return Redis.from_url(url, **options)
    sentinels, service, credentials = parse_sentinel_url(url)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        sentinels,
        sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
        **credentials,
        **options,
    )
    master: Redis = sentinel.master_for(service)
    return master


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, dict[str, Any]]:
    """``redis+sentinel://[user:password@]h1:p1,h2:p2/db/service`` -> (sentinels, service, credentials).

    The same format as python-socketio's ``AsyncRedisManager`` reads.
    """
    parsed = urlparse(url)
    sentinels = []
    for host_port in parsed.netloc.rpartition("@")[2].split(","):
        host, _, port = host_port.rpartition(":")
        sentinels.append((host, int(port)))
    credentials: dict[str, Any] = {}
    if parsed.username:
        credentials["username"] = unquote(parsed.username)
    if parsed.password:
        credentials["password"] = unquote(parsed.password)
    parts = parsed.path.split("/")
    if len(parts) >= 2 and parts[1]:
        credentials["db"] = int(parts[1])
    if len(parts) < 3 or not parts[2]:
        raise ValueError("a redis+sentinel:// URL needs the master name after the database: .../0/name")
    return sentinels, parts[2], credentials


class Outage:
    """Failures of one Redis-backed part: the first is logged as an error, the rest are counted, and the
    recovery is logged with the count, so that an outage under traffic is one pair of lines, not a flood."""

    def __init__(self, logger: logging.Logger, part: str) -> None:
        self._log = logger
        self._part = part
        self._since: float | None = None
        self._failures = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException) -> None:
        self._failures += 1
        if self._since is None:
            self._since = time.monotonic()
            self._log.error("%s: Redis unavailable (%s: %s)", self._part, type(error).__name__, error)

    def recovered(self) -> None:
        if self._since is None:
            return
        self._log.warning(
            "%s: Redis is back after %.1f s (%d failed calls meanwhile)",
            self._part,
            time.monotonic() - self._since,
            self._failures,
        )
        self._since = None
        self._failures = 0
