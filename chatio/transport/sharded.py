"""Room-sharded Socket.IO fan-out (``CHATIO_REDIS_FANOUT=sharded``): Redis 7 sharded pub/sub, one channel
per room, subscribed only by the processes where the room has members.

:class:`ShardedManager` is :class:`~chatio.transport.fanout.ClusterManager` (catch-up after a loss, the
duplicate filter, the broadcast fast path for local delivery) with a different wire to Redis:

* **Publishing** (python-socketio's ``_publish`` hook, through ``ClusterManager._send``): an emit to one chat
  room goes to that room's shard channel ``<prefix>#room:<room>`` with ``SPUBLISH``; an emit to a socket of
  this process is not published at all (it was delivered here); everything else -- emits to a user's
  ``@user:`` room or to several rooms at once, disconnects, ``close_room``, callbacks, the catch-up notice --
  goes to the one server-wide shard channel ``<prefix>#server`` that every process subscribes to.
* **Subscribing** (the ``_listen`` hook, through ``ClusterManager._received``): ``SSUBSCRIBE`` to the server
  channel and to the channel of every room with a member here. The first local join of a room subscribes,
  and the join waits (at most ``CHATIO_REDIS_TIMEOUT_SECONDS``) for Redis to confirm, so that the join's
  history and the live messages after it leave no gap; the last local member leaving releases the channel
  after ``RELEASE_GRACE_SECONDS``, unless someone joined again meanwhile. Clients of the plain WebSocket
  endpoint (``/ws/chat``) enter rooms through this manager too, so they count as local members.
* **Redis Cluster.** A shard channel lives on the node that owns its hash slot, so each process holds one
  pub/sub connection per node that owns one of its channels, each read by a task of its own (redis-py's
  own cluster pub/sub reads its nodes in turn, one blocking wait after another, which delays messages).
  Any failure -- a node gone, a slot moved (Redis then sends an ``SUNSUBSCRIBE`` nobody asked for), no
  answer to a ping -- ends the whole subscription; the listener then reads the slot map again, subscribes
  everything anew on the current owners, and catch-up delivers what was missed, as after a Redis restart.
  A single Redis 7 works the same way with one node.

Python-socketio hooks used: ``_publish``/``_listen``/``_handle_emit`` (in ``fanout.py``) and
``enter_room``/``basic_leave_room`` here (public methods of ``AsyncManager``), pinned in
``tests/transport/test_sharded.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.client import PubSub

from chatio.redisconn import REDIS_ERRORS, RedisClient, discover
from chatio.transport.fanout import KEEPALIVE_SECONDS, ClusterManager

log = logging.getLogger(__name__)

#: A room's channel is kept this long after its last local member left, so that churn does not thrash.
RELEASE_GRACE_SECONDS: Final = 5.0


def room_channel(prefix: str, room: str) -> str:
    return f"{prefix}#room:{room}"


def server_channel(prefix: str) -> str:
    return f"{prefix}#server"


class ShardedManager(ClusterManager):
    """The Socket.IO client manager for ``CHATIO_REDIS_FANOUT=sharded``; see the module docstring."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.server_channel = server_channel(self.channel)
        #: Rooms whose channel this process wants: those with a local member, and those in their grace.
        self.wanted: set[str] = set()
        self._shards: Shards | None = None
        self._releases: dict[str, asyncio.TimerHandle] = {}

    # --- rooms (AsyncManager's public methods) ------------------------------------------------------

    async def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        if namespace == "/" and self.is_chat_room(room):
            await self._want(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        if namespace == "/" and self.is_chat_room(room) and room in self.wanted and not self._occupied(room):
            timer = self._releases.pop(room, None)
            if timer is not None:
                timer.cancel()
            loop = asyncio.get_running_loop()
            self._releases[room] = loop.call_later(RELEASE_GRACE_SECONDS, self._release, room)

    async def _want(self, room: str) -> None:
        timer = self._releases.pop(room, None)
        if timer is not None:
            timer.cancel()
        shards = self._shards
        channel = room_channel(self.channel, room)
        if room not in self.wanted:
            self.wanted.add(room)
            if shards is not None:
                try:
                    await shards.subscribe(channel)
                except REDIS_ERRORS:
                    return  # the listener sees the failure too, resubscribes and catches up
        if shards is not None:
            try:
                await asyncio.wait_for(shards.confirmed(channel), self._timeout)
            except TimeoutError:
                log.warning("Redis did not confirm the subscription to %s in time", channel)

    def _release(self, room: str) -> None:
        self._releases.pop(room, None)
        if self._occupied(room) or room not in self.wanted:
            return
        self.wanted.discard(room)
        if self._shards is not None:
            self._tasks.spawn(self._shards.unsubscribe(room_channel(self.channel, room)))

    # --- the wire to Redis ----------------------------------------------------------------------------

    async def _send(self, publisher: RedisClient, data: dict[str, Any]) -> Any:
        room = data.get("room")
        if data.get("method") == "emit" and isinstance(room, str) and self._is_local_sid(room):
            return None
        channel = (
            room_channel(self.channel, room)
            if data.get("method") == "emit" and self.is_chat_room(room) and isinstance(room, str)
            else self.server_channel
        )
        return await publisher.spublish(channel, self.json.dumps(data))

    async def _received(self, client: RedisClient) -> AsyncIterator[bytes]:
        # Visible at once, so that a room joined while this subscribes is subscribed too.
        shards = self._shards = Shards(client)
        try:
            await shards.open()
            await shards.subscribe(self.server_channel)
            for room in sorted(self.wanted):
                await shards.subscribe(room_channel(self.channel, room))
            try:
                for channel in sorted(shards.channels()):
                    await asyncio.wait_for(shards.confirmed(channel), max(self._timeout, 5.0))
            except TimeoutError:
                raise ConnectionError("Redis did not confirm the subscriptions in time") from None
            self._subscribed()
            while True:
                yield await shards.next()
        finally:
            self._shards = None
            await shards.close()

    async def close(self) -> None:
        for timer in self._releases.values():
            timer.cancel()
        self._releases.clear()
        await super().close()

    def _is_local_sid(self, room: str) -> bool:
        return room in self.rooms.get("/", {}).get(None, {})

    def subscriptions(self) -> set[str]:
        """The shard channels subscribed now (compared with ``PUBSUB SHARDCHANNELS`` by the tests)."""
        return set() if self._shards is None else self._shards.channels()


class Shards:
    """The shard-channel subscriptions of one listener lifetime: a pub/sub connection per Redis node that
    owns a subscribed channel, each read by a task of its own. :meth:`next` returns the next payload from
    any node and raises the first failure of any."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._nodes: dict[str, _Node] = {}
        self._where: dict[str, str] = {}
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._inbox: asyncio.Queue[bytes | BaseException] = asyncio.Queue()

    async def open(self) -> None:
        await discover(self._client)

    async def subscribe(self, channel: str) -> None:
        """Send ``SSUBSCRIBE`` to the channel's node; :meth:`confirmed` waits for Redis's answer."""
        name, connect = self._owner(channel)
        node = self._nodes.get(name)
        if node is None:
            node = self._nodes[name] = _Node(name, connect(), self)
        if channel not in self._confirmations or self._confirmations[channel].done():
            self._confirmations[channel] = asyncio.get_running_loop().create_future()
        self._where[channel] = name
        node.released.discard(channel.encode())
        await node.send(node.pubsub.ssubscribe, channel)

    async def unsubscribe(self, channel: str) -> None:
        name = self._where.pop(channel, None)
        self._confirmations.pop(channel, None)
        node = self._nodes.get(name or "")
        if node is not None:
            node.released.add(channel.encode())
            await node.send(node.pubsub.sunsubscribe, channel)

    async def confirmed(self, channel: str) -> None:
        future = self._confirmations.get(channel)
        if future is not None:
            await asyncio.shield(future)

    def channels(self) -> set[str]:
        return set(self._where)

    async def next(self) -> bytes:
        item = await self._inbox.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        for node in self._nodes.values():
            await node.close()
        self._nodes.clear()

    def _owner(self, channel: str) -> tuple[str, Any]:
        """The name of the node that owns ``channel``, and how to connect to it."""
        client = self._client
        if not isinstance(client, RedisCluster):
            return "redis", lambda: client
        node = client.get_node_from_key(channel)
        if node is None:
            raise ConnectionError(f"no Redis Cluster node serves the slot of {channel!r}")
        # A client of the node alone, with the cluster client's options (credentials, TLS, timeouts).
        return node.name, lambda: Redis(
            connection_pool=ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
        )

    # --- from the node readers ---------------------------------------------------------------------------

    def _confirm(self, channel: bytes) -> None:
        future = self._confirmations.get(channel.decode())
        if future is not None and not future.done():
            future.set_result(None)

    def _deliver(self, item: bytes | BaseException) -> None:
        self._inbox.put_nowait(item)


class _Node:
    """One node's pub/sub connection and its reader task (started once the connection exists)."""

    def __init__(self, name: str, client: Redis, shards: Shards) -> None:
        self.name = name
        self.client = client
        self.pubsub: PubSub = client.pubsub()
        self.released: set[bytes] = set()
        self._shards = shards
        self._lock = asyncio.Lock()  # one connection: the first command opens it, the others wait
        self._task: asyncio.Task[None] | None = None

    async def send(self, command: Callable[[str], Awaitable[Any]], channel: str) -> None:
        async with self._lock:
            await command(channel)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._read(), name=f"fanout-{self.name}")

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        heard = loop.time()
        try:
            while True:
                message = await self.pubsub.get_message(timeout=1.0)
                now = loop.time()
                if message is None:
                    if now - heard > 2 * KEEPALIVE_SECONDS:
                        raise ConnectionError(
                            f"{self.name} did not answer a ping in {2 * KEEPALIVE_SECONDS:g} s"
                        )
                    if now - heard > KEEPALIVE_SECONDS:
                        await self.pubsub.ping()
                    continue
                heard = now
                kind = message.get("type")
                if kind == "smessage":
                    self._shards._deliver(message["data"])
                elif kind == "ssubscribe":
                    self._shards._confirm(_bytes(message["channel"]))
                elif kind == "sunsubscribe":
                    channel = _bytes(message["channel"])
                    if channel not in self.released:
                        raise ConnectionError(f"{self.name} dropped {channel!r}: its slot moved")
                    self.released.discard(channel)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._shards._deliver(exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, *REDIS_ERRORS):
                await self._task
        with contextlib.suppress(*REDIS_ERRORS):
            await self.pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            await self.client.aclose()


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
