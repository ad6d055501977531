"""Scale-out: real ``python -m chatio`` processes sharing a real redis-server and mongod.

Clients on different processes chat, type and see each other; a process killed with SIGKILL or drained
with SIGTERM, and a Redis restart, leave every client with every acknowledged message, in seq order.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.cluster_harness import (
    Chatter,
    assert_full_ordered_history,
    converse,
    eventually,
    get_json,
    get_text,
    launch,
)
from tests.harness import connect
from tests.prereqs import require
from tests.procs import ServerProcess
from tools.devcluster import Balancer, find_haproxy, render_haproxy_config
from tools.devservices import RedisProcess, free_port

pytestmark = [pytest.mark.redis, pytest.mark.mongo]

HEARTBEAT = 0.5


@pytest.fixture
def cluster_env(redis_url: str, mongodb_uri: str, mongodb_database: str) -> dict[str, str]:
    """Settings shared by the processes of one test: its own database and Redis key prefix."""
    return {
        "CHATIO_REDIS_URL": redis_url,
        "CHATIO_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        "CHATIO_MONGODB_URI": mongodb_uri,
        "CHATIO_MONGODB_DATABASE": mongodb_database,
        "CHATIO_PRESENCE_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "CHATIO_RATE_LIMIT_PER_MINUTE": "1000",
    }


async def test_clients_on_two_processes_chat_type_and_see_each_other(
    cluster_env: dict[str, str], pods_to_stop: list[ServerProcess]
) -> None:
    env = {**cluster_env, "CHATIO_RATE_LIMIT_PER_MINUTE": "5"}
    one, two = await launch(["pod-1", "pod-2"], env, pods_to_stop)
    alice, bob = await connect(one.url, "alice"), await connect(two.url, "bob")
    try:
        assert (await alice.expect("session"))["pod"] == "pod-1"
        assert (await bob.expect("session"))["pod"] == "pod-2"
        await alice.join("lobby")
        joined = await bob.join("lobby")
        assert joined["members"] == [
            {"user": "alice", "displayName": "alice", "status": "online"},
            {"user": "bob", "displayName": "bob", "status": "online"},
        ]
        assert await alice.expect("user_joined") == {"room": "lobby", "user": "bob", "displayName": "bob"}

        sent = await alice.call("send_message", {"room": "lobby", "text": "hello from pod-1"})
        assert sent["ok"] and await bob.expect("message") == sent["message"]
        answer = await bob.call("send_message", {"room": "lobby", "text": "hello from pod-2"})
        assert (await alice.expect("message"))["seq"] == answer["message"]["seq"] == 2

        await alice.call("typing_start", {"room": "lobby"})
        assert await bob.expect("typing") == {
            "room": "lobby",
            "user": "alice",
            "displayName": "alice",
            "typing": True,
        }
        await alice.call("typing_stop", {"room": "lobby"})
        assert await bob.expect("typing") == {
            "room": "lobby",
            "user": "alice",
            "displayName": "alice",
            "typing": False,
        }
        await bob.call("user_status", {"status": "away"})
        assert await alice.expect("presence") == {"user": "bob", "displayName": "bob", "status": "away"}

        status, stats = get_json(f"{one.url}/api/chat/stats")
        assert status == 200 and stats["pod"] == "pod-1" and stats["connections"] == 1
        assert stats["pods"] == [{"pod": "pod-1", "connections": 1}, {"pod": "pod-2", "connections": 1}]
        assert (stats["clusterConnections"], stats["onlineUsers"], stats["activeRooms"]) == (2, 2, 1)

        # One budget per user, whichever processes they connect to (alice has sent 1 of her 5).
        alice_too = await connect(two.url, "alice")
        await alice_too.join("lobby")
        outcomes = [
            (await (alice if i % 2 else alice_too).call("send_message", {"room": "lobby", "text": str(i)}))
            for i in range(5)
        ]
        assert [ack["ok"] for ack in outcomes] == [True] * 4 + [False]
        assert outcomes[-1]["error"]["code"] == "rate_limited"
        await alice_too.sio.disconnect()

        await bob.sio.disconnect()
        assert await alice.expect("presence") == {"user": "bob", "displayName": "bob", "status": "offline"}
        assert await alice.expect("user_left") == {"room": "lobby", "user": "bob", "displayName": "bob"}
    finally:
        for client in (alice, bob):
            await client.sio.disconnect()
    metrics = await asyncio.to_thread(get_text, f"{two.url}/metrics")
    assert re.search(r'^chat_pod_info\{pod="pod-2"\} 1\.0$', metrics, re.MULTILINE)


async def test_a_process_killed_with_sigkill_loses_no_acknowledged_message(
    cluster_env: dict[str, str], pods_to_stop: list[ServerProcess]
) -> None:
    servers = await launch(["pod-1", "pod-2", "pod-3"], cluster_env, pods_to_stop)
    urls = [server.url for server in servers]
    # Two clients per process; a client whose process dies reconnects to the next one in its list.
    chatters = [Chatter(f"user{i}", urls[i % 3 :] + urls[: i % 3], "war-room") for i in range(6)]
    for chatter in chatters:
        await chatter.start()
    try:
        conversation = asyncio.ensure_future(converse(chatters, rounds=12, pause=0.05))
        await eventually(lambda: sum(len(c.acked) for c in chatters) >= 20, 20, "20 messages acknowledged")
        os.kill(servers[1].pid, signal.SIGKILL)
        killed = asyncio.get_running_loop().time()
        await asyncio.wait_for(conversation, 60)
        total = sum(len(c.acked) for c in chatters)
        await eventually(lambda: all(len(c.messages) >= total for c in chatters), 20, "everyone caught up")
        assert_full_ordered_history(chatters)
        orphans = [c for c in chatters if c.pods[0] == "pod-2"]
        assert len(orphans) == 2 and all(c.disconnects == 1 and c.pod != "pod-2" for c in orphans)

        # The dead process's sockets leave the cluster view within the heartbeat bound.
        def pod_2_gone() -> bool:
            return [p["pod"] for p in get_json(f"{servers[0].url}/api/chat/stats")[1]["pods"]] == [
                "pod-1",
                "pod-3",
            ]

        await eventually(pod_2_gone, 4 * HEARTBEAT + 2, "pod-2 reaped")
        assert asyncio.get_running_loop().time() - killed < 4 * HEARTBEAT + 10
        stats = get_json(f"{servers[2].url}/api/chat/stats")[1]
        assert stats["clusterConnections"] == 6 and stats["onlineUsers"] == 6
    finally:
        for chatter in chatters:
            await chatter.close()


async def test_a_drained_process_hands_its_clients_over_through_the_balancer(
    cluster_env: dict[str, str], pods_to_stop: list[ServerProcess], tmp_path: Path
) -> None:
    haproxy = find_haproxy()
    require(haproxy is not None, "haproxy is not installed (make deps-system)")
    env = {**cluster_env, "CHATIO_DRAIN_DELAY_SECONDS": "1.5"}
    servers = await launch(["pod-1", "pod-2"], env, pods_to_stop)
    port = free_port()
    backends = [(f"pod-{i}", f"127.0.0.1:{server.port}") for i, server in enumerate(servers, 1)]
    config = render_haproxy_config(f"127.0.0.1:{port}", backends, f"127.0.0.1:{free_port()}")
    balancer = Balancer(config, tmp_path / "haproxy", port, binary=haproxy)
    await asyncio.to_thread(balancer.start)
    chatters = [Chatter(f"user{i}", [balancer.url], "town-hall") for i in range(5)]
    # Long-polling needs every request of a session on one process: the balancer keeps them there.
    chatters.append(Chatter("poller", [balancer.url], "town-hall", transports=["polling"]))
    try:
        for chatter in chatters:
            await chatter.start()
        assert {c.pod for c in chatters} == {"pod-1", "pod-2"}
        drained_name = max(["pod-1", "pod-2"], key=lambda name: sum(c.pod == name for c in chatters))
        drained = servers[0] if drained_name == "pod-1" else servers[1]
        # The conversation outlasts the drain (1.5 s delay, then 1 s before clients reconnect).
        conversation = asyncio.ensure_future(converse(chatters, rounds=30, pause=0.1))
        await eventually(lambda: sum(len(c.acked) for c in chatters) >= 10, 20, "10 messages acknowledged")
        os.kill(drained.pid, signal.SIGTERM)
        await asyncio.sleep(0.3)
        assert get_json(f"{drained.url}/readyz") == (503, {"status": "draining"})
        await asyncio.wait_for(conversation, 60)
        assert await asyncio.to_thread(drained.proc.wait, 15) == 0
        total = sum(len(c.acked) for c in chatters)
        await eventually(lambda: all(len(c.messages) >= total for c in chatters), 20, "everyone caught up")
        assert_full_ordered_history(chatters)
        moved = [c for c in chatters if c.pods[0] == drained_name]
        assert moved and all(c.shutdown_notices == 1 and c.pod != drained_name for c in moved)
        assert all(c.shutdown_notices == 0 for c in chatters if c not in moved)
    finally:
        for chatter in chatters:
            await chatter.close()
        balancer.stop()


async def test_delivery_resumes_after_redis_restarts(
    cluster_env: dict[str, str], pods_to_stop: list[ServerProcess], tmp_path: Path
) -> None:
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    try:
        env = {**cluster_env, "CHATIO_REDIS_URL": redis.url}
        one, two = await launch(["pod-1", "pod-2"], env, pods_to_stop)
        alice, bob = Chatter("alice", [one.url], "ops"), Chatter("bob", [two.url], "ops")
        await alice.start()
        await bob.start()
        first = await alice.send("before")
        await eventually(lambda: bob.holds([first]), 5, "bob got the first message")

        redis.kill()
        for server in (one, two):
            await eventually(
                lambda s=server: get_json(f"{s.url}/readyz")[0] == 503, 5, "readiness reports it"
            )
        status, body = get_json(f"{one.url}/readyz")
        assert status == 503 and {"redis", "pubsub"} <= set(body["failing"])
        status, actuator = get_json(f"{one.url}/actuator/health")
        assert status == 503 and actuator["status"] == "DOWN", actuator
        assert {n: c["status"] for n, c in actuator["components"].items()} == {
            "store": "UP",
            "redis": "DOWN",
            "pubsub": "DOWN",
        }
        during = [await alice.send(f"during {i}") for i in range(3)]  # stored and acknowledged
        assert (await bob.send("bob during"))["seq"] == 5

        redis.start()  # the same port, empty
        for server in (one, two):
            await eventually(lambda s=server: get_json(f"{s.url}/readyz")[0] == 200, 15, "ready again")
        status, actuator = get_json(f"{one.url}/actuator/health")
        assert status == 200 and set(actuator["components"]) == {"store", "redis", "pubsub"}, actuator
        # Neither client reconnected: their processes caught up on what Redis could not carry.
        await eventually(lambda: bob.holds(during) and alice.holds(bob.acked), 10, "caught up")
        after = await bob.send("after")
        await eventually(lambda: alice.holds([after]), 5, "live delivery again")
        assert_full_ordered_history([alice, bob])
        assert alice.disconnects == bob.disconnects == 0
        members = (await alice.call("join_room", {"room": "ops"}))["members"]
        assert [m["user"] for m in members] == ["alice", "bob"]
        await alice.close()
        await bob.close()
    finally:
        redis.stop()


async def test_edits_deletions_replies_and_reactions_cross_processes_and_catch_up(
    cluster_env: dict[str, str], pods_to_stop: list[ServerProcess]
) -> None:
    one, two = await launch(["pod-1", "pod-2"], cluster_env, pods_to_stop)
    alice, bob = await connect(one.url, "alice"), await connect(two.url, "bob")
    try:
        await alice.join("lobby")
        await bob.join("lobby")
        parent = (await alice.call("send_message", {"room": "lobby", "text": "ship it?"}))["message"]
        assert await bob.expect("message") == parent
        reply = await bob.call("send_message", {"room": "lobby", "text": "yes", "replyTo": parent["id"]})
        assert (await alice.expect("message"))["replyTo"]["excerpt"] == "ship it?"
        assert reply["message"]["replyTo"]["user"] == "alice"

        edit = {"room": "lobby", "id": parent["id"], "text": "ship it today?"}
        edited = (await alice.call("edit_message", edit))["message"]
        assert await bob.expect("message_updated") == edited and edited["replyCount"] == 1
        refused = await bob.call("edit_message", {**edit, "text": "mine now"})
        assert refused["error"]["code"] == "forbidden"
        await bob.call("react", {"room": "lobby", "id": parent["id"], "emoji": "🚀"})
        assert (await alice.expect("reaction"))["reactions"] == [
            {"emoji": "🚀", "count": 1, "users": ["bob"]}
        ]

        seen_seq, seen_change = reply["message"]["seq"], edited["change"]
        await bob.sio.disconnect()
        deleted = (await alice.call("delete_message", {"room": "lobby", "id": parent["id"]}))["message"]
        assert deleted["deleted"] and deleted["text"] == ""

        bob = await connect(two.url, "bob")
        back = await bob.join("lobby", sinceSeq=seen_seq, sinceChange=seen_change)
        assert back["reset"] is False and back["history"] == []
        assert [(m["id"], m["deleted"]) for m in back["changes"]] == [(parent["id"], True)]
        assert back["change"] == deleted["change"]
        status, page = get_json(f"{two.url}/api/chat/stats")
        assert status == 200 and page["messages"] == 2  # the tombstone keeps its place
    finally:
        for client in (alice, bob):
            await client.sio.disconnect()


async def test_a_ban_and_a_mute_reach_the_users_sockets_on_every_process(
    cluster_env: dict[str, str], pods_to_stop: list[ServerProcess]
) -> None:
    one, two = await launch(["pod-1", "pod-2"], cluster_env, pods_to_stop)
    owner, member = await connect(one.url, "owner"), await connect(one.url, "member")
    near, far = await connect(one.url, "troll"), await connect(two.url, "troll")
    try:
        for client in (owner, member, near, far):
            await client.join("lobby")
        assert (await member.call("ban", {"room": "lobby", "user": "troll"}))["error"]["code"] == "forbidden"
        assert (await owner.call("mute", {"room": "lobby", "user": "troll", "seconds": 30}))["ok"]
        assert (await far.expect("moderated"))["action"] == "mute"

        async def far_is_muted() -> bool:
            refused = await far.call("send_message", {"room": "lobby", "text": "from pod-2"})
            return bool(refused.get("error", {}).get("code") == "muted")

        # The signal and the event travel on different channels: within moments, not in a set order.
        await eventually(far_is_muted, 5.0, "the mute reached pod-2")
        assert (await owner.call("unmute", {"room": "lobby", "user": "troll"}))["ok"]
        assert (await far.expect("moderated"))["action"] == "unmute"

        async def far_may_send() -> bool:
            return bool((await far.call("send_message", {"room": "lobby", "text": "back"}))["ok"])

        await eventually(far_may_send, 5.0, "the unmute reached pod-2")
        assert (await owner.call("ban", {"room": "lobby", "user": "troll", "reason": "spam"}))["ok"]
        assert (await far.expect("moderated"))["action"] == "ban"

        async def both_left() -> bool:
            acks = [await c.call("typing_start", {"room": "lobby"}) for c in (near, far)]
            return all(ack.get("error", {}).get("code") == "not_in_room" for ack in acks)

        await eventually(both_left, 5.0, "the banned user's sockets left the room on both processes")
        assert (await far.call("join_room", {"room": "lobby"}))["error"]["code"] == "banned"
    finally:
        for client in (owner, member, near, far):
            await client.sio.disconnect()


async def test_reading_on_one_device_clears_unread_on_the_other_process(
    cluster_env: dict[str, str], pods_to_stop: list[ServerProcess]
) -> None:
    one, two = await launch(["pod-1", "pod-2"], cluster_env, pods_to_stop)
    alice, phone, laptop = (
        await connect(one.url, "alice"),
        await connect(one.url, "bob"),
        await connect(two.url, "bob"),
    )
    try:
        await alice.join("lobby")
        await phone.join("lobby")
        await laptop.join("lobby")
        sent = [
            (await alice.call("send_message", {"room": "lobby", "text": f"m{n}"}))["message"]
            for n in range(3)
        ]
        assert (await laptop.join("lobby"))["unread"] == 3
        read = await phone.call("mark_read", {"room": "lobby", "seq": sent[-1]["seq"]})
        assert (read["lastRead"], read["unread"]) == (3, 0)
        assert await laptop.expect("read") == {"room": "lobby", "user": "bob", "seq": 3}
        assert await alice.expect("read") == {"room": "lobby", "user": "bob", "seq": 3}
        again = await laptop.join("lobby")
        assert (again["lastRead"], again["unread"], again["lastMessage"]["id"]) == (3, 0, sent[-1]["id"])
        assert (await laptop.call("mark_read", {"room": "lobby", "seq": 1}))["lastRead"] == 3
    finally:
        for client in (alice, phone, laptop):
            await client.sio.disconnect()


async def test_plain_websocket_and_socketio_clients_chat_across_processes(
    cluster_env: dict[str, str], pods_to_stop: list[ServerProcess]
) -> None:
    one, two = await launch(["pod-1", "pod-2"], cluster_env, pods_to_stop)
    sio = await connect(two.url, "sio")
    async with aiohttp.ClientSession() as http:
        plain = await http.ws_connect(one.url.replace("http", "ws") + "/ws/chat?userId=plain")
        try:
            await sio.join("mixed")
            await plain.send_json({"type": "ENTER", "roomId": "mixed", "userId": "plain", "message": ""})
            entered = await plain.receive_json(timeout=5)
            assert entered["type"] == "ENTER" and entered["members"] == ["plain", "sio"], entered
            assert await sio.expect("user_joined") == {
                "room": "mixed",
                "user": "plain",
                "displayName": "plain",
            }
            await plain.send_json({"type": "TALK", "roomId": "mixed", "message": "안녕, pod-2"})
            assert (await plain.receive_json(timeout=5))["seq"] == 1
            message = await sio.expect("message")
            assert (message["user"], message["text"]) == ("plain", "안녕, pod-2")
            await sio.call("send_message", {"room": "mixed", "text": "hello from pod-2"})
            talk = await plain.receive_json(timeout=5)
            assert (talk["type"], talk["userId"], talk["message"], talk["seq"]) == (
                "TALK",
                "sio",
                "hello from pod-2",
                2,
            )
            # A drained process closes its plain clients as going away (1001): they reconnect elsewhere.
            await asyncio.to_thread(one.stop)
            closed = await plain.receive(timeout=10)
            assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1001, closed
        finally:
            await plain.close()
            await sio.sio.disconnect()
