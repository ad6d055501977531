"""The Redis-backed parts of one process (``CHATIO_REDIS_URL``): built from the settings, wired to the chat,
checked by readiness, and started and stopped together.

* :class:`~chatio.transport.fanout.ClusterManager` carries Socket.IO events between processes
  (``app._manager_for`` builds it; it is attached here).
* :class:`~chatio.presence.redis.RedisPresence`: who is online and in which room, for the whole cluster.
* :class:`~chatio.ratelimit.redis.RedisRateLimiter`: one budget per user, whichever process they use.

Readiness (``/readyz``) fails with ``redis`` while Redis does not answer or this process's presence is not
registered again after an outage, and with ``pubsub`` while this process is not subscribed to the
other processes' events.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

from chatio.chat.service import Outbox, message_wire
from chatio.config import Settings
from chatio.health import Health
from chatio.presence import OFFLINE, Presence
from chatio.presence.redis import Arrival, Departure, RedisPresence
from chatio.ratelimit.redis import RedisRateLimiter
from chatio.redisconn import connect
from chatio.store import Store
from chatio.transport.fanout import ClusterManager, Fetch

log = logging.getLogger(__name__)


class OutboxAnnouncer:
    """Announces presence changes found by the heartbeat as the chat core would have for a disconnect."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def departed(self, departures: Sequence[Departure]) -> None:
        for gone in departures:
            if gone.offline and gone.rooms:
                await self._outbox.emit(
                    "presence", {"user": gone.user, "status": OFFLINE}, to=list(gone.rooms)
                )
            for room in gone.left:
                await self._outbox.emit("user_left", {"room": room, "user": gone.user}, to=room)

    async def arrived(self, arrivals: Sequence[Arrival]) -> None:
        for back in arrivals:
            for room in back.rooms:
                await self._outbox.emit("user_joined", {"room": room, "user": back.user}, to=room)


def fetcher(store: Store) -> Fetch:
    """The fan-out's view of stored messages, in ``message`` event form."""

    async def fetch(room: str, before: int | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
        page = await store.page(room, before=before, limit=limit)
        return [message_wire(message) for message in page.messages], page.has_more

    return fetch


class Cluster:
    """One process's membership in the cluster; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        assert settings.redis_url is not None
        if settings.mongodb_uri is None:
            log.warning(
                "CHATIO_REDIS_URL is set without CHATIO_MONGODB_URI: every process keeps a history of its "
                "own, so processes disagree about rooms and message seqs"
            )
        self.redis = connect(settings.redis_url.reveal(), timeout=settings.redis_timeout_seconds, decode=True)
        self.presence = RedisPresence(
            self.redis,
            pod=settings.pod_name,
            prefix=settings.redis_prefix,
            heartbeat_seconds=settings.presence_heartbeat_seconds,
        )
        self.limiter = RedisRateLimiter(
            self.redis, settings.rate_limit_per_minute, prefix=settings.redis_prefix
        )
        self._manager: ClusterManager | None = None
        self._presence_used = False

    def attach(
        self, *, manager: Any, presence: Presence, outbox: Outbox, store: Store, health: Health
    ) -> None:
        """Wire the parts the application uses (a test may have replaced some) and their readiness checks."""
        if isinstance(manager, ClusterManager):
            self._manager = manager
            manager.fetch = fetcher(store)
            health.add_check("pubsub", manager.check)
        self._presence_used = presence is self.presence
        if self._presence_used:
            self.presence.announcer = OutboxAnnouncer(outbox)
        health.add_check("redis", self._check)

    async def lifetime(self, _app: web.Application) -> AsyncIterator[None]:
        """An aiohttp ``cleanup_ctx``: subscribe and register before serving, leave after the drain."""
        if self._manager is not None:
            self._manager.start()
        if self._presence_used:
            await self.presence.start()
        yield
        if self._presence_used:
            await self.presence.close()
        if self._manager is not None:
            await self._manager.close()
        await self.redis.aclose()

    async def _check(self) -> None:
        await self.redis.ping()
        if self._presence_used and not self.presence.healthy:
            raise ConnectionError("presence is not registered in Redis yet")
