"""Scale-out on a Redis Cluster: real ``python -m chatio`` processes, a real six-node Redis Cluster (three
masters with a replica each) and a real mongod.

Clients on different processes chat in many rooms with either fan-out (classic single channel, or sharded
by room); presence and the shared rate limit work across processes; and a master killed in the middle of a
conversation (its replica takes over) leaves every client with every acknowledged message, in seq order,
without reconnecting, while ``/readyz`` reports the loss as long as it lasts.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import RedisCluster

from chatio.redisconn import connect as redis_client
from chatio.transport.sharded import room_channel
from tests.cluster_harness import Chatter, assert_full_ordered_history, converse, eventually, get_json, launch
from tests.harness import connect
from tests.procs import ServerProcess
from tests.services import RedisClusterFactory

pytestmark = [pytest.mark.redis, pytest.mark.mongo]

RATE = 40


def cluster_env(redis_url: str, mongodb_uri: str, mongodb_database: str, fanout: str) -> dict[str, str]:
    return {
        "CHATIO_REDIS_URL": redis_url,
        "CHATIO_REDIS_FANOUT": fanout,
        "CHATIO_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        "CHATIO_MONGODB_URI": mongodb_uri,
        "CHATIO_MONGODB_DATABASE": mongodb_database,
        "CHATIO_PRESENCE_HEARTBEAT_SECONDS": "0.5",
        "CHATIO_RATE_LIMIT_PER_MINUTE": str(RATE),
    }


@pytest.mark.parametrize("fanout", ["sharded", "classic"])
async def test_three_processes_chat_in_many_rooms_over_a_redis_cluster(
    fanout: str,
    redis_cluster_url: str,
    mongodb_uri: str,
    mongodb_database: str,
    pods_to_stop: list[ServerProcess],
) -> None:
    env = cluster_env(redis_cluster_url, mongodb_uri, mongodb_database, fanout)
    servers = await launch(["pod-1", "pod-2", "pod-3"], env, pods_to_stop)
    urls = [server.url for server in servers]
    # Room i has a member on process i % 3 and one on the next process.
    rooms = {
        f"room{i}": [
            Chatter(f"a{i}", [urls[i % 3]], f"room{i}"),
            Chatter(f"b{i}", [urls[(i + 1) % 3]], f"room{i}"),
        ]
        for i in range(6)
    }
    everyone = [chatter for chatters in rooms.values() for chatter in chatters]
    limited = [Chatter("limited", [url], "quota") for url in urls[:2]]
    try:
        for chatter in [*everyone, *limited]:
            await chatter.start()
        await converse(everyone, rounds=5, pause=0.02)
        for chatters in rooms.values():
            total = sum(len(c.acked) for c in chatters)
            await eventually(
                lambda cs=chatters, t=total: all(len(c.messages) >= t for c in cs), 20, "delivered"
            )
            assert_full_ordered_history(chatters)
        # Presence across processes: both members of room0, online, whichever process is asked.
        members = (await rooms["room0"][1].call("join_room", {"room": "room0"}))["members"]
        assert members == [
            {"user": "a0", "displayName": "a0", "status": "online"},
            {"user": "b0", "displayName": "b0", "status": "online"},
        ]
        stats = get_json(f"{urls[2]}/api/chat/stats")[1]
        assert stats["onlineUsers"] == len(everyone) + 1 and stats["clusterConnections"] == len(everyone) + 2
        # One budget for "limited", spent through two processes.
        outcomes = [
            await limited[i % 2].call("send_message", {"room": "quota", "text": str(i)})
            for i in range(RATE + 1)
        ]
        assert [ack["ok"] for ack in outcomes] == [True] * RATE + [False]
        assert outcomes[-1]["error"]["code"] == "rate_limited"
    finally:
        for chatter in [*everyone, *limited]:
            await chatter.close()


async def test_a_master_killed_mid_conversation_loses_no_acknowledged_message(
    redis_cluster_factory: RedisClusterFactory,
    mongodb_uri: str,
    mongodb_database: str,
    pods_to_stop: list[ServerProcess],
) -> None:
    cluster = redis_cluster_factory(node_timeout_ms=1000)
    env = cluster_env(cluster.url, mongodb_uri, mongodb_database, "sharded")
    env["CHATIO_RATE_LIMIT_PER_MINUTE"] = "1000"
    servers = await launch(["pod-1", "pod-2", "pod-3"], env, pods_to_stop)
    urls = [server.url for server in servers]
    chatters = [Chatter(f"user{i}", [urls[i % 3]], "war-room") for i in range(6)]
    # The master that carries the room's channel.
    probe = redis_client(cluster.url, timeout=2.0)
    assert isinstance(probe, RedisCluster)
    await probe.initialize()
    owner = probe.get_node_from_key(room_channel(env["CHATIO_REDIS_PREFIX"], "war-room"))
    await probe.aclose()
    assert owner is not None
    master = next(node for node in cluster.nodes if node.port == owner.port)
    try:
        for chatter in chatters:
            await chatter.start()
        conversation = asyncio.ensure_future(converse(chatters, rounds=25, pause=0.1))
        await eventually(lambda: sum(len(c.acked) for c in chatters) >= 20, 20, "20 messages acknowledged")
        master.kill()
        # Every process subscribed to the room's channel on that master: each reports it while it lasts.
        for url in urls:
            await eventually(
                lambda u=url: get_json(f"{u}/readyz")[0] == 503, 10, "readiness reports the loss"
            )
        status, body = get_json(f"{urls[0]}/readyz")
        assert status == 503 and "pubsub" in body["failing"], body
        for url in urls:
            await eventually(lambda u=url: get_json(f"{u}/readyz")[0] == 200, 30, "ready after the failover")
        await asyncio.wait_for(conversation, 90)
        total = sum(len(c.acked) for c in chatters)
        await eventually(lambda: all(len(c.messages) >= total for c in chatters), 30, "everyone caught up")
        assert_full_ordered_history(chatters)
        assert all(chatter.disconnects == 0 for chatter in chatters)
        # And live delivery works again.
        last = await chatters[0].send("after the failover")
        await eventually(lambda: all(c.holds([last]) for c in chatters), 10, "live delivery again")
    except BaseException:
        for server in servers:
            print(f"--- {server.url}\n{server.output()[-6000:]}")
        raise
    finally:
        for chatter in chatters:
            await chatter.close()


async def test_a_ban_reaches_the_other_process_over_a_redis_cluster(
    redis_cluster_url: str, mongodb_uri: str, mongodb_database: str, pods_to_stop: list[ServerProcess]
) -> None:
    """Moderation signals (RedisSignals) ride a Redis Cluster too."""
    env = cluster_env(redis_cluster_url, mongodb_uri, mongodb_database, "sharded")
    one, two = await launch(["pod-1", "pod-2"], env, pods_to_stop)
    owner, troll = await connect(one.url, "owner"), await connect(two.url, "troll")
    try:
        await owner.join("club")
        await troll.join("club")
        assert (await owner.call("ban", {"room": "club", "user": "troll"}))["ok"]

        async def left() -> bool:
            ack = await troll.call("typing_start", {"room": "club"})
            return bool(ack.get("error", {}).get("code") == "not_in_room")

        await eventually(left, 5.0, "the ban reached pod-2 over the Redis Cluster")
        assert (await troll.call("join_room", {"room": "club"}))["error"]["code"] == "banned"
    finally:
        for client in (owner, troll):
            await client.sio.disconnect()
