"""The room-sharded fan-out (``CHATIO_REDIS_FANOUT=sharded``) on a single Redis 7 and on a Redis Cluster.

Each process is subscribed to the shard channels of its own rooms and the server channel, and nothing else
(read back from Redis with ``PUBSUB SHARDCHANNELS`` / ``SHARDNUMSUB`` on every node); messages reach every
member, and only the processes holding a room receive its traffic; a room's channel is released after the
grace that follows its last local member; server-wide events still reach every process.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp
import pytest
import socketio
from redis.asyncio import Redis, RedisCluster

from chatio.chat.ports import USER_ROOM_PREFIX
from chatio.config import Secret, Settings
from chatio.keys import SERVER
from chatio.redisconn import connect as redis_client
from chatio.transport import sharded
from chatio.transport.fanout import ClusterManager
from chatio.transport.sharded import ShardedManager, room_channel, server_channel
from tests.harness import Client, RunningServer, connect, serving

pytestmark = pytest.mark.redis


def test_the_sharded_manager_uses_python_socketios_documented_hooks() -> None:
    manager = ShardedManager(
        "redis://127.0.0.1:1/0", channel="c", timeout=0.5, user_room_prefix=USER_ROOM_PREFIX
    )
    assert isinstance(manager, socketio.AsyncRedisManager) and isinstance(manager, ClusterManager)
    pubsub = socketio.async_pubsub_manager.AsyncPubSubManager
    for hook in ("_publish", "_listen", "_handle_emit"):
        assert hook in vars(pubsub), hook  # what fanout.py overrides
    # enter_room(sid, namespace, room, eio_sid) and basic_leave_room(sid, namespace, room), overridden here.
    assert list(inspect.signature(pubsub.enter_room).parameters) == [
        "self",
        "sid",
        "namespace",
        "room",
        "eio_sid",
    ]
    leave = socketio.base_manager.BaseManager.basic_leave_room
    assert list(inspect.signature(leave).parameters) == ["self", "sid", "namespace", "room"]


@asynccontextmanager
async def processes(url: str, count: int) -> AsyncIterator[tuple[str, list[RunningServer]]]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    async with AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(
                serving(
                    Settings(
                        pod_name=f"pod-{index}",
                        redis_url=Secret(url),
                        redis_prefix=prefix,
                        redis_fanout="sharded",
                        rate_limit_per_minute=10_000,
                    )
                )
            )
            for index in range(count)
        ]
        yield prefix, servers


def manager_of(server: RunningServer) -> ShardedManager:
    manager = server.app[SERVER].manager
    assert isinstance(manager, ShardedManager)
    return manager


async def node_clients(url: str) -> list[Redis]:
    """A client of each master (a single Redis: itself)."""
    client = redis_client(url, timeout=2.0, decode=True)
    if not isinstance(client, RedisCluster):
        assert isinstance(client, Redis)
        return [client]
    await client.initialize()
    nodes = [Redis(host=node.host, port=node.port, decode_responses=True) for node in client.get_primaries()]
    await client.aclose()
    return nodes


async def shard_channels(nodes: list[Redis], prefix: str) -> dict[str, int]:
    """Every shard channel of ``prefix`` with a subscriber, on any node, and how many subscribers it has."""
    found: dict[str, int] = {}
    for node in nodes:
        for channel in await node.execute_command("PUBSUB", "SHARDCHANNELS", f"{prefix}#*"):
            name = channel.decode() if isinstance(channel, bytes) else channel
            counts = await node.execute_command("PUBSUB", "SHARDNUMSUB", name)
            found[name] = found.get(name, 0) + int(counts[1])
    return found


async def until(check: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        outcome = check() if callable(check) else check
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_each_process_subscribes_to_its_own_rooms_only(any_redis_url: str) -> None:
    # Twelve rooms over three processes: room r lives on process r % 3 and, for every third room, also
    # on the next one; every room's two members chat.
    async with processes(any_redis_url, 3) as (prefix, servers):
        nodes = await node_clients(any_redis_url)
        people: list[tuple[str, Client, Client]] = []
        try:
            for room_index in range(12):
                room = f"room{room_index}"
                home = room_index % 3
                other = (home + 1) % 3 if room_index % 3 == 0 else home
                first = await connect(servers[home].url, f"a{room_index}")
                second = await connect(servers[other].url, f"b{room_index}")
                await first.join(room)
                await second.join(room)
                people.append((room, first, second))
            held: list[set[str]] = [set() for _ in servers]
            for room_index in range(12):
                home = room_index % 3
                held[home].add(f"room{room_index}")
                if room_index % 3 == 0:
                    held[(home + 1) % 3].add(f"room{room_index}")
            for server, rooms in zip(servers, held, strict=True):
                expected = {server_channel(prefix), *(room_channel(prefix, room) for room in rooms)}
                assert manager_of(server).subscriptions() == expected
            expected_counts = {server_channel(prefix): 3}
            for room_index in range(12):
                expected_counts[room_channel(prefix, f"room{room_index}")] = 2 if room_index % 3 == 0 else 1
            assert await shard_channels(nodes, prefix) == expected_counts

            before = [manager_of(server).received for server in servers]
            for room, first, second in people:
                ack = await first.call("send_message", {"room": room, "text": f"hello {room}"})
                assert ack["ok"], ack
                assert (await second.expect("message"))["text"] == f"hello {room}"
            await asyncio.sleep(0.3)
            received = [
                manager_of(server).received - start for server, start in zip(servers, before, strict=True)
            ]
            # Each process hears the messages of its own rooms (its own echoes included), nothing else.
            assert received == [len(rooms) for rooms in held]
        finally:
            for _room, first, second in people:
                await first.sio.disconnect()
                await second.sio.disconnect()
            for node in nodes:
                await node.aclose()


async def test_a_room_is_released_after_its_last_local_member_and_the_grace(
    any_redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sharded, "RELEASE_GRACE_SECONDS", 0.5)
    async with processes(any_redis_url, 2) as (prefix, (one, two)):
        nodes = await node_clients(any_redis_url)
        alice, bob = await connect(one.url, "alice"), await connect(two.url, "bob")
        try:
            await alice.join("lobby")
            await bob.join("lobby")
            channel = room_channel(prefix, "lobby")
            assert (await shard_channels(nodes, prefix)).get(channel) == 2
            assert (await alice.call("leave_room", {"room": "lobby"}))["ok"]
            await alice.join("lobby")  # back within the grace: the subscription stays
            assert channel in manager_of(one).subscriptions()
            assert (await alice.call("leave_room", {"room": "lobby"}))["ok"]
            await until(lambda: channel not in manager_of(one).subscriptions())
            await until(lambda: shard_channels(nodes, prefix))
            assert (await shard_channels(nodes, prefix)).get(channel) == 1  # bob's process only
            # Joining again subscribes again before the join is acknowledged.
            await alice.join("lobby")
            assert (await shard_channels(nodes, prefix)).get(channel) == 2
            assert (await bob.call("send_message", {"room": "lobby", "text": "welcome back"}))["ok"]
            assert (await alice.expect("message"))["text"] == "welcome back"
        finally:
            await alice.sio.disconnect()
            await bob.sio.disconnect()
            for node in nodes:
                await node.aclose()


async def test_presence_of_a_user_on_another_process_reaches_their_rooms(any_redis_url: str) -> None:
    # "presence" goes to all of a user's rooms at once: the server channel carries it.
    async with processes(any_redis_url, 2) as (_prefix, (one, two)):
        alice, bob = await connect(one.url, "alice"), await connect(two.url, "bob")
        try:
            for room in ("a", "b"):
                await alice.join(room)
                await bob.join(room)
            assert (await bob.call("user_status", {"status": "away"}))["ok"]
            update = await alice.expect("presence")
            assert update == {"user": "bob", "displayName": "bob", "status": "away"}
            await alice.nothing("presence", wait=0.3)  # once, not once per room
        finally:
            await alice.sio.disconnect()
            await bob.sio.disconnect()


async def test_the_publisher_of_a_room_message_is_not_fed_other_rooms(redis_url: str) -> None:
    # A process with no member in a room does not receive that room's messages at all.
    async with processes(redis_url, 2) as (_prefix, (one, two)):
        alice, bob = await connect(one.url, "alice"), await connect(one.url, "bob")
        carol = await connect(two.url, "carol")
        try:
            await alice.join("here")
            await bob.join("here")
            await carol.join("there")
            start = manager_of(two).received
            for index in range(20):
                assert (await alice.call("send_message", {"room": "here", "text": str(index)}))["ok"]
            for _ in range(20):
                await bob.expect("message")
            await asyncio.sleep(0.3)
            assert manager_of(two).received == start
        finally:
            for client in (alice, bob, carol):
                await client.sio.disconnect()


async def test_a_plain_websocket_member_is_a_local_member_too(redis_url: str) -> None:
    # /ws/chat clients enter rooms through the same manager: their process subscribes to the room's channel.
    async with processes(redis_url, 2) as (prefix, (one, two)), aiohttp.ClientSession() as http:
        sio = await connect(one.url, "sio")
        try:
            await sio.join("mixed")
            url = two.url.replace("http://", "ws://") + "/ws/chat?userId=plain"
            async with http.ws_connect(url) as plain:
                await plain.send_json({"type": "ENTER", "roomId": "mixed"})
                assert (await plain.receive_json(timeout=5))["type"] == "ENTER"
                assert room_channel(prefix, "mixed") in manager_of(two).subscriptions()
                assert (await sio.call("send_message", {"room": "mixed", "text": "to plain"}))["ok"]
                while True:
                    frame = await plain.receive_json(timeout=5)
                    if frame["type"] == "TALK":
                        break
                assert (frame["userId"], frame["message"]) == ("sio", "to plain")
        finally:
            await sio.sio.disconnect()
