"""Socket.IO fan-out between processes through Redis pub/sub, that survives Redis going away.

:class:`ClusterManager` is python-socketio's ``AsyncRedisManager`` (with the broadcast fast path of
``transport.FastRedisManager`` for local delivery) plus what a chat cluster needs from it:

* **A watched subscription.** The listener (python-socketio's documented ``_listen`` hook) subscribes with
  a client that never reconnects silently, pings Redis when the channel is quiet, and on any failure logs
  once, reports not ready (:meth:`check`), and resubscribes with a backoff capped at
  ``RESUBSCRIBE_MAX_SECONDS`` (python-socketio's own caps at 60 s). It starts with the server
  (:meth:`start`), not at the first connection, so that readiness means something from the start.
* **Publishing that never fails a command.** A message is stored before it is published; when Redis is
  away, the publish is logged and dropped, the sender still gets its ``ok`` ack, and the catch-up below
  delivers the message to the other processes' sockets later.
* **Catch-up after a loss.** While this process was not subscribed, or another process could not publish,
  ``message`` events went missing. When the subscription comes back, the process re-reads, for every room
  with sockets here, the messages stored since the loss began (with a margin for clock skew) and delivers
  those its sockets have not had; and it tells the other processes to do the same (a ``chatio_sweep``
  notice on the channel), which also covers publishes that failed elsewhere.
* **Each message once per process.** A short window of the seqs delivered per room drops the duplicates
  that catch-up, client retries (same ``clientMsgId``) or a racing publish would cause. Catch-up may
  deliver a message after a later one; clients order by ``seq`` (docs/protocol.md).

The one python-socketio internal used beyond the ``_listen``/``_publish``/``_handle_emit`` hooks is
``server.manager_initialized`` in :meth:`start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from socketio.async_pubsub_manager import AsyncPubSubManager

from chatio.background import Background
from chatio.redisconn import REDIS_ERRORS, Outage, RedisClient, connect, discover
from chatio.store import now_ms
from chatio.transport import DeliveryListener, FastRedisManager

log = logging.getLogger(__name__)

RESUBSCRIBE_MIN_SECONDS: Final = 0.25
RESUBSCRIBE_MAX_SECONDS: Final = 5.0
KEEPALIVE_SECONDS: Final = 5.0
#: Catch-up looks this much further back than the loss, for clocks that disagree between processes.
SWEEP_MARGIN_MS: Final = 5_000
SWEEP_PAGE: Final = 200
SWEEP_MAX_PAGES: Final = 10
SWEEP_ATTEMPTS: Final = 5
#: Seqs per room remembered for dropping duplicates; rooms without sockets here are forgotten this often.
SEQ_WINDOW: Final = 1024
PRUNE_SECONDS: Final = 60.0
_NOTICE_METHOD: Final = "chatio_sweep"
_NOTICE: Final = _NOTICE_METHOD.encode()

#: ``fetch(room, before, limit)``: stored messages of ``room`` (wire form, oldest first) below ``before``
#: (the newest ones when None), and whether older ones exist.
Fetch = Callable[[str, int | None, int], Awaitable[tuple[list[dict[str, Any]], bool]]]


class RoomLog:
    """The messages of one room recently delivered to this process's sockets, by seq."""

    __slots__ = ("high", "seen")

    def __init__(self) -> None:
        self.high = 0
        self.seen: dict[int, str] = {}

    def admit(self, seq: int, message_id: str) -> bool:
        """True (and remembered) unless this message was delivered here already."""
        if seq <= self.high - SEQ_WINDOW or self.seen.get(seq) == message_id:
            return False
        self.seen[seq] = message_id
        if seq > self.high:
            self.high = seq
            if len(self.seen) > 2 * SEQ_WINDOW:
                floor = self.high - SEQ_WINDOW
                self.seen = {s: i for s, i in self.seen.items() if s > floor}
        return True


class ClusterManager(FastRedisManager):
    """The Socket.IO client manager for ``CHATIO_REDIS_URL``; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        timeout: float,
        user_room_prefix: str,
        fast: bool = True,
        on_delivered: DeliveryListener | None = None,
    ) -> None:
        """``user_room_prefix``: what the names of the rooms that reach a user's devices start with (the
        chat core's, from the composition root); they are not chat rooms and hold no messages to catch up."""
        super().__init__(url, channel=channel, logger=log, fast=fast, on_delivered=on_delivered)
        self.user_room_prefix = user_room_prefix
        self.fetch: Fetch | None = None
        self.subscribed = False
        self._timeout = timeout
        self._publisher: RedisClient | None = None
        #: Payloads received from Redis, this process's own echoes included; ``on_received`` hears each.
        self.received = 0
        self.on_received: Callable[[], None] | None = None
        self._rooms_log: dict[str, RoomLog] = {}
        self._subscription = Outage(log, "socket.io fan-out (subscribe)")
        self._publishing = Outage(log, "socket.io fan-out (publish)")
        self._lost_since_ms: int | None = None
        self._unpublished_since_ms: int | None = None
        self._sweep_since_ms: int | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks = Background(log, "socket.io fan-out background work failed")

    # --- lifetime ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe now instead of at the first connection (python-socketio's default)."""
        if not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.initialize()

    async def close(self) -> None:
        tasks = [task for task in (getattr(self, "thread", None), self._sweeper, *self._tasks) if task]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None

    async def check(self) -> None:
        """Readiness: raise while this process does not receive the other processes' events."""
        if not self.subscribed:
            raise ConnectionError("not subscribed to the Redis channel")

    # --- python-socketio hooks -----------------------------------------------------------------------

    async def _publish(self, data: Any) -> Any:
        publisher = self._publisher
        if publisher is None:
            publisher = self._publisher = connect(self.redis_url, timeout=self._timeout)
        try:
            receivers = await self._send(publisher, data)
        except Exception as exc:  # Redis's errors, or redis-py's own: a publish never fails a command
            self._publishing.failed(exc)
            if self._unpublished_since_ms is None:
                self._unpublished_since_ms = now_ms()
            # A fresh client next time (a Redis Cluster's slot map may have changed: failover); the old one
            # is closed once the publishes still using it are over.
            if self._publisher is publisher:
                self._publisher = None
                self._tasks.spawn(_close_later(publisher, 2 * self._timeout + 1))
            return None
        self._publishing.recovered()
        if self._unpublished_since_ms is not None and self.subscribed:
            since, self._unpublished_since_ms = self._unpublished_since_ms, None
            self._tasks.spawn(self._publish(_notice(self.host_id, since - SWEEP_MARGIN_MS)))
        return receivers

    async def _send(self, publisher: RedisClient, data: dict[str, Any]) -> Any:
        """Publish one message; the number of subscribers that got it (None when nobody should)."""
        return await publisher.publish(self.channel, self.json.dumps(data))

    async def _listen(self) -> AsyncIterator[bytes]:
        delay = RESUBSCRIBE_MIN_SECONDS
        while True:
            client = connect(self.redis_url, timeout=self._timeout, retries=0)
            try:
                async for data in self._subscription_messages(client):
                    delay = RESUBSCRIBE_MIN_SECONDS
                    yield data
            except REDIS_ERRORS as exc:
                self._lost(exc)
            except Exception as exc:  # a bug or an unexpected reply: loud, and the listener goes on
                log.exception("socket.io fan-out listener failed")
                self._lost(exc)
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESUBSCRIBE_MAX_SECONDS)

    async def _subscription_messages(self, client: RedisClient) -> AsyncIterator[bytes]:
        """The payloads for python-socketio until the connection fails (raises); catch-up notices are
        answered here, and this process's own publications skipped unparsed."""
        loop = asyncio.get_running_loop()
        # Redis echoes this process's own publications, which python-socketio would parse only to drop.
        # Skip them unparsed: within JSON text a quote is always escaped, so only the envelope can match.
        # (A "callback" names the host it is for, so one naming this host is kept.)
        own = b'"host_id":"' + self.host_id.encode() + b'"'
        callback = b'"method":"callback"'
        pruned = loop.time()
        async for data in self._received(client):
            self.received += 1
            if self.on_received is not None:
                self.on_received()
            now = loop.time()
            if now - pruned > PRUNE_SECONDS:
                self._prune()
                pruned = now
            if (own in data and callback not in data) or (_NOTICE in data and self._answer_notice(data)):
                continue
            yield data

    async def _received(self, client: RedisClient) -> AsyncIterator[bytes]:
        """Every payload published on the channel, from subscribing until the connection fails (raises)."""
        loop = asyncio.get_running_loop()
        channel = self.channel.encode()
        await discover(client)
        async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self.channel)
            self._subscribed()
            heard = loop.time()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                now = loop.time()
                if message is None:
                    if now - heard > 2 * KEEPALIVE_SECONDS:
                        raise ConnectionError(f"Redis did not answer a ping for {2 * KEEPALIVE_SECONDS:g} s")
                    if now - heard > KEEPALIVE_SECONDS:
                        await pubsub.ping()
                    continue
                heard = now
                if message.get("type") == "message" and message.get("channel") == channel:
                    yield message["data"]

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        identity = _message_identity(message)
        if identity is not None:
            room, seq, message_id = identity
            if not self._occupied(room):
                self._rooms_log.pop(room, None)
                return
            if not self._rooms_log.setdefault(room, RoomLog()).admit(seq, message_id):
                return
        await super()._handle_emit(message)

    # --- loss and catch-up ---------------------------------------------------------------------------

    def _lost(self, error: BaseException) -> None:
        self.subscribed = False
        self._subscription.failed(error)
        if self._lost_since_ms is None:
            self._lost_since_ms = now_ms()

    def _subscribed(self) -> None:
        self.subscribed = True
        self._subscription.recovered()
        if self._lost_since_ms is None:
            return
        since = self._lost_since_ms - SWEEP_MARGIN_MS
        self._lost_since_ms = None
        self._request_sweep(since)
        self._tasks.spawn(self._publish(_notice(self.host_id, since)))

    def _answer_notice(self, data: bytes) -> bool:
        try:
            notice = self.json.loads(data)
        except ValueError:
            return False
        if not isinstance(notice, dict) or notice.get("method") != _NOTICE_METHOD:
            return False
        if notice.get("host_id") != self.host_id and isinstance(notice.get("since_ms"), int):
            self._request_sweep(notice["since_ms"])
        return True

    def _request_sweep(self, since_ms: int) -> None:
        if self._sweep_since_ms is None or since_ms < self._sweep_since_ms:
            self._sweep_since_ms = since_ms
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop(), name="fanout-sweep")

    async def _sweep_loop(self) -> None:
        attempt = 0
        while self._sweep_since_ms is not None:
            since = self._sweep_since_ms
            self._sweep_since_ms = None
            try:
                await self._sweep(since)
                attempt = 0
            except Exception:
                attempt += 1
                log.exception(
                    "catch-up after a Redis loss failed (attempt %d of %d)", attempt, SWEEP_ATTEMPTS
                )
                if attempt < SWEEP_ATTEMPTS:
                    self._request_sweep(since)
                    await asyncio.sleep(attempt)

    async def _sweep(self, since_ms: int) -> None:
        """Deliver to this process's sockets what was stored since ``since_ms`` and they have not had."""
        if self.fetch is None:
            return
        rooms = self._prune()
        delivered = 0
        for room in sorted(rooms):
            for payload in await self._stored_since(room, since_ms):
                room_log = self._rooms_log.setdefault(room, RoomLog())
                if self._occupied(room) and room_log.admit(payload["seq"], payload["id"]):
                    # Local sockets only: AsyncPubSubManager's parent delivers without publishing.
                    await super(AsyncPubSubManager, self).emit("message", payload, "/", room=room)
                    delivered += 1
        log.info("catch-up: %d rooms checked, %d missed messages delivered", len(rooms), delivered)

    async def _stored_since(self, room: str, since_ms: int) -> list[dict[str, Any]]:
        assert self.fetch is not None
        collected: list[dict[str, Any]] = []
        before: int | None = None
        for _ in range(SWEEP_MAX_PAGES):
            page, has_more = await self.fetch(room, before, SWEEP_PAGE)
            recent = [message for message in page if message["ts"] >= since_ms]
            collected = recent + collected
            if not has_more or not page or len(recent) < len(page):
                break
            before = page[0]["seq"]
        return collected

    # --- helpers -------------------------------------------------------------------------------------

    def _prune(self) -> set[str]:
        """Forget the delivery logs of rooms without sockets here; return the rooms with sockets."""
        rooms = self._occupied_rooms()
        self._rooms_log = {room: entry for room, entry in self._rooms_log.items() if room in rooms}
        return rooms

    def _occupied(self, room: str) -> bool:
        return bool(self.rooms.get("/", {}).get(room))

    def _occupied_rooms(self) -> set[str]:
        """Chat rooms with sockets here: not the per-socket rooms, nor the per-user rooms that carry
        invitations (they hold no messages to catch up on)."""
        rooms = self.rooms.get("/", {})
        everyone = rooms.get(None, {})
        return {
            room
            for room, members in rooms.items()
            if self.is_chat_room(room) and members and room not in everyone
        }

    def is_chat_room(self, room: Any) -> bool:
        """A named room that is not a user's (a per-socket room is a chat room by this test too)."""
        return isinstance(room, str) and not room.startswith(self.user_room_prefix)


async def _close_later(client: RedisClient, seconds: float) -> None:
    await asyncio.sleep(seconds)
    with contextlib.suppress(*REDIS_ERRORS):
        await client.aclose()


def _notice(host_id: str, since_ms: int) -> dict[str, Any]:
    return {"method": _NOTICE_METHOD, "host_id": host_id, "since_ms": since_ms}


def _message_identity(message: dict[str, Any]) -> tuple[str, int, str] | None:
    """(room, seq, id) of a ``message`` event to one room, else None."""
    if message.get("event") != "message" or message.get("binary"):
        return None
    room, data = message.get("room"), message.get("data")
    if not isinstance(room, str) or not isinstance(data, list) or len(data) != 1:
        return None
    payload = data[0]
    if not isinstance(payload, dict):
        return None
    seq, message_id = payload.get("seq"), payload.get("id")
    if not isinstance(seq, int) or not isinstance(message_id, str):
        return None
    return room, seq, message_id
