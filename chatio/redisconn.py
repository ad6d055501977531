"""Redis connections for the cluster parts, and the log that keeps a Redis outage loud but readable.

``CHATIO_REDIS_URL`` is one of

* ``redis://`` or ``rediss://``: one Redis;
* ``redis+sentinel://[:password@]h1:p1,h2:p2/db/name``: a Sentinel-managed primary (the master ``name`` is
  required, see ``config.py``);
* ``redis+cluster://[user:password@]h1:p1,h2:p2,...`` (``rediss+cluster://`` for TLS): a Redis Cluster,
  reached through any of the listed nodes; redis-py's cluster client learns the slot map from them and
  follows it as it changes (failover, resharding).

Every command is bounded by ``CHATIO_REDIS_TIMEOUT_SECONDS`` and retried at most once: callers fall back or
report instead of waiting.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final
from urllib.parse import ParseResult, unquote, urlparse

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

# What a Redis call may raise when the server is away: redis-py's own errors, and the OS's for sockets.
# AttributeError too: redis-py's asyncio connection, reconnecting to a Redis Cluster master that died
# meanwhile, writes to a writer it has already dropped ("'NoneType' object has no attribute 'writelines'",
# seen in tests/e2e/test_redis_cluster.py's failover) -- an outage like any other, not a chat error.
REDIS_ERRORS: Final = (RedisError, OSError, AttributeError)

CLUSTER_SCHEMES: Final = ("redis+cluster://", "rediss+cluster://")

#: A client of one Redis (or Sentinel-managed primary) or of a Redis Cluster.
RedisClient = Redis | RedisCluster


def is_cluster(url: str) -> bool:
    """True for a Redis Cluster URL."""
    return url.startswith(CLUSTER_SCHEMES)


def connect(url: str, *, timeout: float, retries: int = 1, decode: bool = False) -> RedisClient:
    """A client (with its own pool) for ``url``; it connects lazily and reconnects by itself.

    ``decode``: replies as ``str`` instead of ``bytes``.
    """
    options: dict[str, Any] = {
        "decode_responses": decode,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), retries),
    }
    if is_cluster(url):
        nodes, credentials = parse_cluster_url(url)
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes], **credentials, **options
        )
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


async def discover(client: RedisClient) -> None:
    """Read a Redis Cluster's slot map now (its pub/sub needs it first); a no-op for one Redis."""
    if isinstance(client, RedisCluster):
        await client.initialize()


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, dict[str, Any]]:
    """``redis+sentinel://[user:password@]h1:p1,h2:p2/db/service`` -> (sentinels, service, credentials).

    The same format as python-socketio's ``AsyncRedisManager`` reads.
    """
    parsed = urlparse(url)
    credentials = _credentials(parsed)
    parts = parsed.path.split("/")
    if len(parts) >= 2 and parts[1]:
        credentials["db"] = int(parts[1])
    if len(parts) < 3 or not parts[2]:
        raise ValueError("a redis+sentinel:// URL needs the master name after the database: .../0/name")
    return _hosts(parsed), parts[2], credentials


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """``redis+cluster://[user:password@]h1:p1,h2:p2`` -> (nodes, client options: credentials, TLS)."""
    parsed = urlparse(url)
    options = _credentials(parsed)
    if url.startswith("rediss+"):
        options["ssl"] = True
    return _hosts(parsed), options


def _hosts(parsed: ParseResult) -> list[tuple[str, int]]:
    hosts = []
    for host_port in parsed.netloc.rpartition("@")[2].split(","):
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a Redis node must be host:port, not {host_port!r}")
        hosts.append((host, int(port)))
    return hosts


def _credentials(parsed: ParseResult) -> dict[str, Any]:
    credentials: dict[str, Any] = {}
    if parsed.username:
        credentials["username"] = unquote(parsed.username)
    if parsed.password:
        credentials["password"] = unquote(parsed.password)
    return credentials


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
