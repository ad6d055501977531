"""Classic vs sharded fan-out on a Redis Cluster: what each chatio process receives from Redis.

``python -m tools.bench.sharding`` starts a six-node Redis Cluster (three masters, one replica each) on
free loopback ports, then, for ``CHATIO_REDIS_FANOUT=classic`` and ``sharded`` in turn, four chatio
processes (two per core on a two-core machine) with the in-memory store, and one conversation from the
load generator: ``--connections`` connections in rooms of ``--room-size``; room ``r`` lives on process
``r % 4`` alone, except one room in four, which has half its members on the next process too. So each
process holds about 5/16 of the rooms (and of the messages): with the classic channel it still receives
every message of the cluster; sharded, only those of its own rooms.

For each manager it prints, per process: the messages it received from Redis (``chat_fanout_received``
from its ``/metrics``) and their ratio to the messages published in the whole cluster, next to the share
of rooms the process holds; deliveries per second to clients; the server CPU per delivery; and Redis's own
cost per publish (``INFO commandstats`` on the masters: ``usec_per_call`` of ``PUBLISH`` / ``SPUBLISH``,
which includes pushing the message to every subscriber). On a machine with fewer cores than processes
the absolute figures are relative costs; the ratios are what the sharding changes. Last, for each manager,
one idle process is fed 10,000 pub/sub messages for a room it holds nobody in (one at a time, then in
bursts of 50): the CPU one inbound message costs it, which the classic channel pays for every message of
the cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import os
import re
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

import orjson
from redis.asyncio import Redis, RedisCluster

from chatio.loadtest import LoadConfig, Swarm, framing
from chatio.loadtest.stats import CpuMeter
from chatio.redisconn import connect as redis_client
from tools.bench.servers import CHATIO_BENCH_ENV, Server, ServerKind, start
from tools.devservices import RedisCluster as LocalRedisCluster

PROCESSES = 4


def home_of(room: int, position: int, room_size: int) -> int:
    """The process that member ``position`` of room ``room`` connects to (see the module docstring)."""
    home = room % PROCESSES
    if (room // PROCESSES) % PROCESSES == home and position >= room_size // 2:
        return (home + 1) % PROCESSES
    return home


def room_share(rooms: int, room_size: int) -> list[float]:
    """The share of the rooms (and, the senders being spread evenly, of the messages) each process holds."""
    held = [
        sum(
            1
            for room in range(rooms)
            if any(home_of(room, p, room_size) == process for p in range(room_size))
        )
        for process in range(PROCESSES)
    ]
    return [count / rooms for count in held]


class PlacedSwarm(Swarm):
    """The generator's swarm, each connection on the process :func:`home_of` names."""

    def __init__(self, config: LoadConfig, targets: Sequence[str]) -> None:
        super().__init__(config, io.StringIO())
        self.targets = [framing.Target.parse(url) for url in targets]

    def target_for(self, index: int) -> framing.Target:
        size = self.config.room_size
        return self.targets[home_of(index // size, index % size, size)]


@dataclasses.dataclass
class Outcome:
    fanout: str
    sent: int
    deliveries_per_s: float
    received: list[int]
    cpu_seconds: list[float]
    delivered: int
    publish_usec: float
    #: (calls, us per call) of Lua scripts: while connecting and joining (presence), and while chatting
    #: (the shared rate limit).
    ramp_scripts: tuple[int, float]
    hold_scripts: tuple[int, float]


def received_from_redis(server: Server) -> int:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found = re.search(r"^chat_fanout_received_total ([0-9.e+]+)$", text, re.MULTILINE)
    return int(float(found.group(1))) if found else 0


async def command_cost(url: str, command: str) -> tuple[int, int]:
    """(calls, microseconds) of ``command`` summed over the cluster's masters since their stats reset."""
    cluster = redis_client(url, timeout=2.0, decode=True)
    assert isinstance(cluster, RedisCluster)
    await cluster.initialize()
    calls = usec = 0
    for node in cluster.get_primaries():
        client = Redis(host=node.host, port=int(node.port), decode_responses=True)
        stats = await client.info("commandstats")
        entry = stats.get(f"cmdstat_{command}", {})
        calls += int(entry.get("calls", 0))
        usec += int(entry.get("usec", 0))
        await client.aclose()
    await cluster.aclose()
    return calls, usec


async def reset_stats(url: str) -> None:
    cluster = redis_client(url, timeout=2.0, decode=True)
    assert isinstance(cluster, RedisCluster)
    await cluster.initialize()
    for node in cluster.get_primaries():
        client = Redis(host=node.host, port=int(node.port))
        await client.config_resetstat()
        await client.aclose()
    await cluster.aclose()


async def run_fanout(fanout: str, url: str, args: argparse.Namespace) -> Outcome:
    prefix = f"sh-{uuid.uuid4().hex[:8]}"
    environ = {**CHATIO_BENCH_ENV, "CHATIO_REDIS_URL": url, "CHATIO_REDIS_FANOUT": fanout}
    environ["CHATIO_REDIS_PREFIX"] = prefix
    servers: list[Server] = []
    try:
        for index in range(PROCESSES):
            name = f"{fanout}-{index + 1}"
            kind = ServerKind(
                name,
                "chatio",
                f"python -m chatio ({name})",
                {**environ, "CHATIO_POD_NAME": name},
                port_flag=None,
            )
            servers.append(await start(kind, None))
        config = LoadConfig(
            target_url=servers[0].url,
            conn_count=args.connections,
            batch_size=100,
            batch_delay_ms=0,
            room_id="sh",
            room_size=args.room_size,
            rates=(args.rate,),
            duration=args.seconds,
            client_id=f"sh{uuid.uuid4().hex[:6]}",
            drain_sec=5.0,
        )
        swarm = PlacedSwarm(config, [server.url for server in servers])
        await reset_stats(url)
        ramp = await swarm.ramp()
        if ramp.failed:
            logs = "\n".join(server.output(4000) for server in servers)
            raise RuntimeError(f"{fanout}: {ramp.failed} connections failed: {ramp.errors}\n{logs}")
        try:
            await swarm.settle(0.5, 5)
            ramp_scripts = await command_cost(url, "evalsha")
            await reset_stats(url)
            before = [received_from_redis(server) for server in servers]
            meters = [CpuMeter(server.pid) for server in servers]
            step = await swarm.hold(args.rate, args.seconds, label=fanout)
            cpu = [meter.lap() * step.seconds for meter in meters]
            after = [received_from_redis(server) for server in servers]
        finally:
            await swarm.close()
        calls, usec = await command_cost(url, "spublish" if fanout == "sharded" else "publish")
        hold_scripts = await command_cost(url, "evalsha")
        return Outcome(
            fanout=fanout,
            sent=step.acked,
            deliveries_per_s=step.deliveries_per_s,
            received=[end - start for start, end in zip(before, after, strict=True)],
            cpu_seconds=cpu,
            delivered=step.delivered,
            publish_usec=usec / calls if calls else 0.0,
            ramp_scripts=(ramp_scripts[0], ramp_scripts[1] / max(ramp_scripts[0], 1)),
            hold_scripts=(hold_scripts[0], hold_scripts[1] / max(hold_scripts[0], 1)),
        )
    finally:
        for server in servers:
            server.stop()


def table(outcomes: Sequence[Outcome], shares: Sequence[float]) -> str:
    head = (
        f"{'fan-out':<9}{'process':>8}{'rooms held':>12}{'from Redis':>12}{'÷ published':>13}{'cpu s':>8}"
        f"{'deliveries/s':>14}{'cpu us/delivery':>17}{'Redis us/publish':>18}"
    )
    lines = [head, "-" * len(head)]
    for outcome in outcomes:
        per_delivery = sum(outcome.cpu_seconds) / max(outcome.delivered, 1) * 1e6
        rows = zip(outcome.received, shares, outcome.cpu_seconds, strict=True)
        for index, (received, share, cpu) in enumerate(rows):
            ratio = received / max(outcome.sent, 1)
            tail = (
                f"{outcome.deliveries_per_s:>14.0f}{per_delivery:>17.1f}{outcome.publish_usec:>18.2f}"
                if index == 0
                else ""
            )
            lines.append(
                f"{outcome.fanout:<9}{index + 1:>8}{share:>12.0%}{received:>12}{ratio:>13.2f}{cpu:>8.2f}"
                + tail
            )
        total = sum(outcome.received)
        lines.append(
            f"{outcome.fanout:<9}{'all':>8}{'':>12}{total:>12}{total / max(outcome.sent, 1):>13.2f}"
            f"{sum(outcome.cpu_seconds):>8.2f}   ({outcome.sent} messages published)"
        )
        (ramp_calls, ramp_us), (hold_calls, hold_us) = outcome.ramp_scripts, outcome.hold_scripts
        lines.append(
            f"{outcome.fanout:<9}Redis Lua scripts: {ramp_calls} while connecting and joining, "
            f"{ramp_us:.1f} us each; {hold_calls} while chatting, {hold_us:.1f} us each"
        )
    by_kind = {outcome.fanout: outcome for outcome in outcomes}
    classic, sharded = by_kind.get("classic"), by_kind.get("sharded")
    if classic is not None and sharded is not None:
        avoided = sum(classic.received) - sum(sharded.received)
        saved = sum(classic.cpu_seconds) - sum(sharded.cpu_seconds)
        if avoided > 0:
            lines.append(
                f"server CPU per inbound pub/sub message (classic - sharded): {saved / avoided * 1e6:.1f} us"
            )
    return "\n".join(lines)


INBOUND_MESSAGES = 10_000
BURST = 50


async def inbound_cost(fanout: str, url: str) -> tuple[float, float]:
    """Server CPU (us) per pub/sub message for a room without a member on the process, arriving one at a
    time and in bursts of ``BURST``: one idle chatio process, messages published from here."""
    prefix = f"in-{uuid.uuid4().hex[:8]}"
    environ = {**CHATIO_BENCH_ENV, "CHATIO_REDIS_URL": url, "CHATIO_REDIS_FANOUT": fanout}
    environ |= {"CHATIO_REDIS_PREFIX": prefix, "CHATIO_POD_NAME": f"inbound-{fanout}"}
    kind = ServerKind(f"inbound-{fanout}", "chatio", "python -m chatio (idle)", environ, port_flag=None)
    server = await start(kind, None)
    publisher = redis_client(url, timeout=5.0)
    channel = prefix if fanout == "classic" else f"{prefix}#server"
    payload = orjson.dumps(
        {
            "method": "emit",
            "event": "message",
            "data": [{"room": "elsewhere", "seq": 1, "id": "x"}],
            "binary": False,
            "namespace": "/",
            "room": "elsewhere",
            "skip_sid": None,
            "callback": None,
            "host_id": "another-process",
        }
    )
    send = publisher.publish if fanout == "classic" else publisher.spublish
    costs = []
    try:
        await asyncio.sleep(1.0)
        for burst in (1, BURST):
            meter = CpuMeter(server.pid)
            started = time.monotonic()
            for _ in range(INBOUND_MESSAGES // burst):
                await asyncio.gather(*(send(channel, payload) for _ in range(burst)))
            await asyncio.sleep(1.0)  # the server finishes reading
            costs.append(meter.lap() * (time.monotonic() - started) / INBOUND_MESSAGES * 1e6)
    finally:
        await publisher.aclose()
        server.stop()
    return costs[0], costs[1]


async def main_async(args: argparse.Namespace) -> tuple[list[Outcome], dict[str, tuple[float, float]]]:
    with tempfile.TemporaryDirectory(prefix="chatio-sharding-") as workdir:
        cluster = LocalRedisCluster(Path(workdir) / "redis")
        cluster.start()
        try:
            outcomes = [await run_fanout(fanout, cluster.url, args) for fanout in ("classic", "sharded")]
            inbound = {fanout: await inbound_cost(fanout, cluster.url) for fanout in ("classic", "sharded")}
            return outcomes, inbound
        finally:
            cluster.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.sharding", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--room-size", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200.0, help="messages a second, all senders together")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    outcomes, inbound = asyncio.run(main_async(args))
    rooms = args.connections // args.room_size
    shares = room_share(rooms, args.room_size)
    print(
        f"{PROCESSES} chatio processes on a six-node Redis Cluster, {args.connections} connections in "
        f"{rooms} rooms of {args.room_size}, {args.rate:g} messages/s for {args.seconds:g} s, "
        f"memory store, {os.cpu_count()} CPUs"
    )
    print(table(outcomes, shares))
    for fanout, (single, burst) in inbound.items():
        print(
            f"{fanout}: server CPU per pub/sub message for a room with no member on the process: "
            f"{single:.1f} us one at a time, {burst:.1f} us in bursts of {BURST}"
        )


if __name__ == "__main__":
    main()
