"""The Redis-backed parts of one process (``CHATIO_REDIS_URL``): built from the settings, wired to the chat,
checked by readiness, and started and stopped together.

* :class:`~chatio.transport.fanout.ClusterManager` carries Socket.IO events between processes
  (``app._manager_for`` builds it; it is attached here).
* :class:`~chatio.presence.redis.RedisPresence`: who is online and in which room, for the whole cluster.
* :class:`~chatio.ratelimit.redis.RedisRateLimiter`: one budget per user, whichever process they use.
* :class:`RedisSignals`: notices that every process applies to its sockets: moderation (kick, ban, mute),
  and the end of an account or a login session.

Readiness (``/readyz``) fails with ``redis`` while Redis does not answer or this process's presence is not
registered again after an outage, and with ``pubsub`` while this process is not subscribed to the
other processes' events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

from chatio.chat.moderation import LocalSignals, Signal
from chatio.chat.ports import Outbox
from chatio.chat.wire import message_wire
from chatio.config import Settings
from chatio.health import Health
from chatio.presence import OFFLINE, Presence
from chatio.presence.redis import Arrival, Departure, RedisPresence
from chatio.ratelimit.redis import RedisRateLimiter
from chatio.redisconn import REDIS_ERRORS, Outage, RedisClient, connect, discover
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


class RedisSignals(LocalSignals):
    """:class:`~chatio.chat.moderation.Signals` over Redis pub/sub (channel ``<prefix>:signals``), for
    moderation and for the end of accounts and sessions (``chatio.realtime.endings``).

    A signal is applied here first, then published; each other process applies it when it arrives. While
    Redis is away, publishing is logged and dropped and the subscription is resumed with a backoff: the
    other processes then learn of bans and mutes only when their sockets join again (from the store).
    """

    def __init__(self, redis: RedisClient, channel: str) -> None:
        super().__init__()
        self._redis = redis
        self._channel = channel
        self._origin = uuid.uuid4().hex
        self._outage = Outage(log, "moderation signals")
        self._task: asyncio.Task[None] | None = None

    async def publish(self, signal: Signal) -> None:
        await self.deliver(signal)
        try:
            await self._redis.publish(self._channel, json.dumps({"origin": self._origin, "signal": signal}))
        except REDIS_ERRORS as exc:
            log.warning("moderation signal not published to the other processes: %s", exc)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="moderation-signals")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        delay = 0.25
        while True:
            try:
                await discover(self._redis)
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._outage.recovered()
                    delay = 0.25
                    while True:
                        message = await pubsub.get_message(timeout=0.5)
                        if message is not None:
                            await self._received(message.get("data"))
            except REDIS_ERRORS as exc:
                self._outage.failed(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _received(self, data: object) -> None:
        try:
            notice = json.loads(data) if isinstance(data, (str, bytes)) else None
        except ValueError:
            notice = None
        if not isinstance(notice, dict) or not isinstance(notice.get("signal"), dict):
            log.warning("ignored a malformed moderation signal")
            return
        if notice.get("origin") != self._origin:
            try:
                await self.deliver(notice["signal"])
            except Exception:
                log.exception("applying a moderation signal failed")


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
        self.signals = RedisSignals(self.redis, f"{settings.redis_prefix}:signals")
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
        self.signals.start()
        yield
        await self.signals.close()
        if self._presence_used:
            await self.presence.close()
        if self._manager is not None:
            await self._manager.close()
        await self.redis.aclose()

    async def _check(self) -> None:
        await self.redis.ping()
        if self._presence_used and not self.presence.healthy:
            raise ConnectionError("presence is not registered in Redis yet")
