"""The Redis fan-out's own rules: each message once per process, and the manager python-socketio sees."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import socketio

from chatio.chat.ports import USER_ROOM_PREFIX
from chatio.config import Secret, Settings
from chatio.keys import SERVER
from chatio.redisconn import REDIS_ERRORS
from chatio.redisconn import connect as redis_client
from chatio.transport.fanout import SEQ_WINDOW, ClusterManager, RoomLog
from tests.cluster_harness import Chatter, assert_full_ordered_history, eventually
from tests.harness import RunningServer, connect, serving
from tools.devservices import RedisProcess, free_port


def test_a_room_log_admits_each_message_once() -> None:
    log = RoomLog()
    assert log.admit(2, "b") and log.admit(1, "a")  # late, but not seen: delivered
    assert not log.admit(2, "b") and not log.admit(1, "a")
    assert log.admit(2, "other")  # another message under a seen seq (stores that disagree): delivered


def test_a_room_log_forgets_beyond_its_window() -> None:
    log = RoomLog()
    for seq in range(1, 3 * SEQ_WINDOW):
        assert log.admit(seq, str(seq))
    assert len(log.seen) <= 2 * SEQ_WINDOW
    assert not log.admit(1, "1")  # below the window: too old to be new


def test_the_redis_manager_is_python_socketios() -> None:
    manager = ClusterManager(
        "redis://127.0.0.1:1/0", channel="c", timeout=0.5, user_room_prefix=USER_ROOM_PREFIX
    )
    assert isinstance(manager, socketio.AsyncRedisManager)


@pytest.mark.redis
@pytest.mark.mongo
async def test_a_retried_message_reaches_the_other_process_once(
    redis_url: str, mongodb_uri: str, mongodb_database: str
) -> None:
    async with two_processes(redis_url, mongodb_uri, mongodb_database) as (one, two):
        alice, bob = await connect(one.url, "alice"), await connect(two.url, "bob")
        try:
            await alice.join("r")
            await bob.join("r")
            payload = {"room": "r", "text": "once", "clientMsgId": "m1"}
            first = await alice.call("send_message", payload)
            again = await alice.call("send_message", payload)
            assert first["message"] == again["message"]
            assert (await bob.expect("message"))["id"] == first["message"]["id"]
            await bob.nothing("message", wait=0.5)
        finally:
            await alice.sio.disconnect()
            await bob.sio.disconnect()


@contextlib.asynccontextmanager
async def two_processes(
    redis_url: str, mongodb_uri: str, mongodb_database: str
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """Two chatio processes ("one", "two") sharing a fresh Redis prefix and the MongoDB database."""
    settings = Settings(
        pod_name="one",
        redis_url=Secret(redis_url),
        redis_prefix=f"test-{uuid.uuid4().hex[:12]}",
        mongodb_uri=Secret(mongodb_uri),
        mongodb_database=mongodb_database,
    )
    async with serving(settings) as one, serving(dataclasses.replace(settings, pod_name="two")) as two:
        yield one, two


@pytest.mark.redis
async def test_sentinel_urls_reach_the_primary(tmp_path: Path) -> None:
    primary = RedisProcess(tmp_path / "primary")
    primary.start()
    sentinel_port = free_port()
    config = tmp_path / "sentinel.conf"  # Sentinel rewrites its configuration: a file of its own
    config.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor chat 127.0.0.1 {primary.port} 1\n"
    )
    assert primary.binary is not None
    # Popen returns once the child is forked; the loop below waits for it to serve.
    sentinel = subprocess.Popen(  # noqa: ASYNC220
        [str(primary.binary), str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    url = f"redis+sentinel://127.0.0.1:{sentinel_port}/0/chat"
    publisher, subscriber = (
        redis_client(url, timeout=1.0, decode=True),
        redis_client(url, timeout=1.0, decode=True),
    )
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            try:
                await publisher.set("chatio-sentinel-probe", "1")
                break
            except REDIS_ERRORS:
                assert asyncio.get_running_loop().time() < deadline, "Sentinel never named the primary"
                await asyncio.sleep(0.1)
        async with subscriber.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe("c")
            assert await publisher.publish("c", "hello") == 1
            message = None
            for _ in range(20):  # the subscribe confirmation comes first, as None
                message = message or await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        assert message is not None and message["data"] == "hello"
        direct = redis_client(primary.url, timeout=1.0, decode=True)
        assert await direct.get("chatio-sentinel-probe") == "1"  # it was the primary all along
        await direct.aclose()
    finally:
        await publisher.aclose()
        await subscriber.aclose()
        sentinel.terminate()
        sentinel.wait(10)
        primary.stop()


@pytest.mark.redis
@pytest.mark.mongo
async def test_a_message_overtaken_on_its_way_is_not_lost_across_a_reconnect(
    redis_url: str, mongodb_uri: str, mongodb_database: str
) -> None:
    """Issue 14.4: a local broadcast overtakes one relayed through Redis, so a client holds seq 2 without
    seq 1; it reconnects to the other process inside that window. Re-joining with the highest seq held (the
    old rule) skipped seq 1 for good; docs/protocol.md's rule (the contiguous seq, holes filled) does not."""
    async with two_processes(redis_url, mongodb_uri, mongodb_database) as (one, two):
        manager = two.app[SERVER].manager
        relay = manager._handle_emit
        delayed: list[dict[str, object]] = []

        async def slow_first_relay(message: dict[str, object]) -> None:
            if message.get("event") == "message" and not delayed:  # the fault: one slow relay
                delayed.append(message)
                await asyncio.sleep(3.0)
            await relay(message)

        manager._handle_emit = slow_first_relay
        alice, bob = Chatter("alice", [one.url], "r"), Chatter("bob", [two.url], "r")
        carol = Chatter("carol", [two.url, one.url], "r")  # served by two, reconnects to one
        chatters = [alice, bob, carol]
        for chatter in chatters:
            await chatter.start()
        try:
            await alice.send("first")  # seq 1: on its slow way to two
            await bob.send("second")  # seq 2: local on two, reaches carol at once
            await eventually(lambda: 2 in carol.messages, 5, "carol holds seq 2")
            assert 1 not in carol.messages and delayed, "the relay was not overtaken"
            assert carol._sio is not None
            await carol._sio.disconnect()  # inside the window: seq 1 is still on its way to two
            await eventually(lambda: carol.pods[-1:] == ["one"], 10, "carol is served by one")
            await eventually(lambda: carol.contiguous() == 2, 10, "carol holds seq 1 too")
            await eventually(lambda: all(c.contiguous() == 2 for c in chatters), 10, "everyone holds both")
            assert_full_ordered_history(chatters)
        finally:
            for chatter in chatters:
                await chatter.close()
