"""The delivery guarantee of docs/protocol.md under faults: three real ``python -m chatio`` processes behind
HAProxy, a real redis-server and mongod, and the four kinds of client -- python-socketio and the npm
``socket.io-client``, each over WebSocket and over long-polling -- in one conversation. Every client must
end holding every acknowledged message, under its seq, with nothing missing and nothing extra.

* a plain conversation: messages relayed between processes arrive out of seq order now and then;
* Redis restarted under it: every process reports not ready, HAProxy drops the long-polling clients, which
  then held later messages of their own process but not earlier relayed ones;
* one process drained with SIGTERM under it: its clients, of both libraries, reconnect elsewhere.

``make test`` runs each fault once; ``make soak`` runs the Redis restart and the drain ten times each
(``CHATIO_SOAK_REPETITIONS``) and appends the figures of every round to ``CHATIO_SOAK_REPORT``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_harness import (
    Chatter,
    JsChatter,
    assert_full_ordered_history,
    converse,
    eventually,
    get_json,
    launch,
)
from tests.prereqs import require, require_npm_package
from tests.procs import ServerProcess, start_server
from tools.devcluster import Balancer, find_haproxy, render_haproxy_config
from tools.devservices import RedisProcess, free_port

pytestmark = [pytest.mark.redis, pytest.mark.mongo, pytest.mark.node]

REPETITIONS = int(os.environ.get("CHATIO_SOAK_REPETITIONS", "1"))
REPORT = os.environ.get("CHATIO_SOAK_REPORT")
ROUNDS = 15
PAUSE = 0.1
HEARTBEAT = 0.5
PODS = ("pod-1", "pod-2", "pod-3")

Client = Chatter | JsChatter
Fault = Callable[["Cluster", Sequence[Client]], Awaitable[None]]


class Cluster:
    """Redis, three chatio processes and HAProxy in front; ``url`` is the balancer's."""

    def __init__(
        self, redis: RedisProcess, servers: list[ServerProcess], balancer: Balancer, env: dict[str, str]
    ):
        self.redis = redis
        self.servers = servers
        self.balancer = balancer
        self.env = env

    @property
    def url(self) -> str:
        return self.balancer.url

    def ready(self, status: int) -> Callable[[], bool]:
        return lambda: all(get_json(f"{server.url}/readyz")[0] == status for server in self.servers)


@pytest.fixture
async def cluster(
    mongodb_uri: str, mongodb_database: str, pods_to_stop: list[ServerProcess], tmp_path: Path
) -> AsyncIterator[Cluster]:
    haproxy = find_haproxy()
    require(haproxy is not None, "haproxy is not installed (make deps-system)")
    require_npm_package("socket.io-client")
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    env = {
        "CHATIO_REDIS_URL": redis.url,
        "CHATIO_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        "CHATIO_MONGODB_URI": mongodb_uri,
        "CHATIO_MONGODB_DATABASE": mongodb_database,
        "CHATIO_PRESENCE_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "CHATIO_RATE_LIMIT_PER_MINUTE": "100000",
        "CHATIO_DRAIN_DELAY_SECONDS": "1.5",
    }
    balancer: Balancer | None = None
    try:
        servers = await launch(list(PODS), env, pods_to_stop)
        port = free_port()
        backends = [(name, f"127.0.0.1:{server.port}") for name, server in zip(PODS, servers, strict=True)]
        config = render_haproxy_config(f"127.0.0.1:{port}", backends, f"127.0.0.1:{free_port()}")
        balancer = Balancer(config, tmp_path / "haproxy", port, binary=haproxy)
        await asyncio.to_thread(balancer.start)
        cluster = Cluster(redis, servers, balancer, env)
        await eventually(cluster.ready(200), 15, "every process ready")
        yield cluster
    finally:
        if balancer is not None:
            balancer.stop()
        redis.stop()


def clients(url: str, room: str) -> list[Client]:
    return [
        Chatter("py-ws", [url], room),
        Chatter("py-ws-2", [url], room),
        Chatter("py-poll", [url], room, transports=["polling"]),
        JsChatter("js-ws", url, room),
        JsChatter("js-poll", url, room, transports=["polling"]),
    ]


async def conversation_under(cluster: Cluster, fault: Fault, label: str, repetition: int) -> dict[str, Any]:
    """One conversation in a fresh room with ``fault`` in its middle; the figures of the round."""
    room = f"{label}-{repetition}-{uuid.uuid4().hex[:6]}"
    chatters = clients(cluster.url, room)
    started = time.monotonic()
    try:
        for chatter in chatters:
            await chatter.start()
        talking = asyncio.ensure_future(converse(chatters, rounds=ROUNDS, pause=PAUSE))
        await eventually(lambda: sum(len(c.acked) for c in chatters) >= 10, 30, "10 messages acknowledged")
        await fault(cluster, chatters)
        await asyncio.wait_for(talking, 180)
        total = sum(len(c.acked) for c in chatters)
        await eventually(lambda: all(len(c.messages) >= total for c in chatters), 30, "everyone caught up")
        assert_full_ordered_history(chatters)
    finally:
        for chatter in chatters:
            await chatter.close()
    figures = {
        "fault": label,
        "repetition": repetition,
        "seconds": round(time.monotonic() - started, 1),
        "acknowledged": sum(len(c.acked) for c in chatters),
        "clients": {
            c.name: {"held": len(c.messages), "reconnects": c.disconnects, "outOfOrder": c.out_of_order}
            for c in chatters
        },
        "missing": 0,  # assert_full_ordered_history passed
    }
    print(json.dumps(figures))
    if REPORT:
        await asyncio.to_thread(_append, Path(REPORT), json.dumps(figures))
    return figures


def _append(path: Path, line: str) -> None:
    with path.open("a") as report:
        report.write(line + "\n")


async def no_fault(_cluster: Cluster, _chatters: Sequence[Client]) -> None:
    return None


async def restart_redis(cluster: Cluster, _chatters: Sequence[Client]) -> None:
    cluster.redis.kill()
    await eventually(cluster.ready(503), 10, "every process reports Redis lost")
    await asyncio.sleep(2.5)  # HAProxy takes every process out of rotation: long-polls are dropped
    cluster.redis.start()  # the same port, empty
    await eventually(cluster.ready(200), 20, "every process ready again")


async def drain_one(cluster: Cluster, chatters: Sequence[Client]) -> None:
    """SIGTERM the process serving the most clients; start it again on its port once it exited."""
    busiest = max(PODS, key=lambda name: sum(c.pods[-1] == name for c in chatters if c.pods))
    index = PODS.index(busiest)
    drained = cluster.servers[index]
    os.kill(drained.pid, signal.SIGTERM)
    assert await asyncio.to_thread(drained.proc.wait, 20) == 0
    env = {**cluster.env, "CHATIO_POD_NAME": busiest, "CHATIO_PORT": str(drained.port)}
    cluster.servers[index] = await asyncio.to_thread(start_server, env)
    await eventually(cluster.ready(200), 15, f"{busiest} back")
    moved = [c for c in chatters if busiest in c.pods]
    assert moved and all(c.disconnects >= 1 for c in moved), "the drained process's clients reconnected"


async def test_a_plain_conversation_ends_in_seq_order_for_every_client(cluster: Cluster) -> None:
    await conversation_under(cluster, no_fault, "plain", 1)


async def test_redis_restarts_lose_no_acknowledged_message(cluster: Cluster) -> None:
    for repetition in range(1, REPETITIONS + 1):
        await conversation_under(cluster, restart_redis, "redis-restart", repetition)


async def test_sigterm_drains_lose_no_acknowledged_message(
    cluster: Cluster, pods_to_stop: list[ServerProcess]
) -> None:
    try:
        for repetition in range(1, REPETITIONS + 1):
            await conversation_under(cluster, drain_one, "sigterm-drain", repetition)
    finally:
        pods_to_stop.extend(server for server in cluster.servers if server not in pods_to_stop)
