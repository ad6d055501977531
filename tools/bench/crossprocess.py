"""Cross-process delivery: what Redis fan-out costs, one process against two.

``python -m tools.bench.crossprocess`` starts a ``redis-server`` and (with ``--store mongo``, the
default) a ``mongod`` on free ports, then runs the same conversation against three set-ups:

* ``1 process, in-process``: one chatio without Redis (the embedded manager), the yardstick;
* ``1 process, Redis``: one chatio with ``CHATIO_REDIS_URL``: every emit is also published;
* ``2 processes, Redis``: two chatio processes; connections alternate between them, so every room has
  members on both and each message reaches half its room through Redis.

The conversation is the load generator's (:mod:`chatio.loadtest`): ``--connections`` connections in
rooms of ``--room-size``, every connection a sender, each ``--rates`` step (messages a second, all
senders together) held ``--seconds``. Deliveries are owed to every other member of the sender's room;
latency is send-to-delivery on the generator's clock. It prints one table row per set-up and rate.

Each server runs on its own CPU when there are enough (``--cpus``); on a small machine they share, and
the generator, Redis and mongod compete with them: read the figures as relative costs, not capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from chatio.loadtest import LoadConfig, StepResult, Swarm, framing
from chatio.loadtest.stats import CpuMeter
from tools.bench.servers import CHATIO_BENCH_ENV, Server, ServerKind, start
from tools.devservices import MongodProcess, RedisProcess


class SpreadSwarm(Swarm):
    """The generator's swarm, with connection ``i`` on ``targets[i % len(targets)]``."""

    def __init__(self, config: LoadConfig, targets: Sequence[str]) -> None:
        super().__init__(config, io.StringIO())
        self.targets = [framing.Target.parse(url) for url in targets]

    def target_for(self, index: int) -> framing.Target:
        return self.targets[index % len(self.targets)]


async def run_setup(
    label: str, servers: list[Server], args: argparse.Namespace
) -> list[tuple[str, StepResult, float]]:
    config = LoadConfig(
        target_url=servers[0].url,
        conn_count=args.connections,
        batch_size=100,
        batch_delay_ms=0,
        room_id="xp",
        room_size=args.room_size,
        rates=tuple(args.rates),
        duration=args.seconds,
        client_id=f"xp{uuid.uuid4().hex[:6]}",
        drain_sec=5.0,
    )
    swarm = SpreadSwarm(config, [server.url for server in servers])
    ramp = await swarm.ramp()
    if ramp.failed:
        raise RuntimeError(f"{label}: {ramp.failed} connections failed: {ramp.errors}")
    rows = []
    try:
        await swarm.settle(0.5, 5)
        for rate in args.rates:
            meters = [CpuMeter(server.pid) for server in servers]
            result = await swarm.hold(rate, args.seconds, label=label)
            server_cpu = sum(meter.lap() for meter in meters)
            rows.append((label, result, server_cpu))
            await swarm.settle(0.5, 5)
    finally:
        await swarm.close()
    return rows


def _kind(name: str, environ: dict[str, str]) -> ServerKind:
    return ServerKind(name, "chatio", f"python -m chatio ({name})", {**CHATIO_BENCH_ENV, **environ}, None)


async def main_async(args: argparse.Namespace) -> list[tuple[str, StepResult, float]]:
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="chatio-crossprocess-") as workdir:
        redis = RedisProcess(Path(workdir) / "redis")
        mongod = MongodProcess(Path(workdir) / "mongod") if args.store == "mongo" else None
        redis.start()
        try:
            if mongod is not None:
                mongod.start()
            rows = []
            for label, processes, with_redis in [
                ("1 process, in-process", 1, False),
                ("1 process, Redis", 1, True),
                ("2 processes, Redis", 2, True),
            ]:
                environ = {"CHATIO_REDIS_PREFIX": f"xp-{uuid.uuid4().hex[:8]}"}
                if with_redis:
                    environ["CHATIO_REDIS_URL"] = redis.url
                if mongod is not None:
                    environ["CHATIO_MONGODB_URI"] = mongod.uri
                    environ["CHATIO_MONGODB_DATABASE"] = f"bench_{uuid.uuid4().hex[:8]}"
                servers: list[Server] = []
                try:
                    for i in range(processes):
                        kind = _kind(f"xp-{i + 1}", {**environ, "CHATIO_POD_NAME": f"xp-{i + 1}"})
                        cpu = cpus[-1 - i] if len(cpus) >= args.cpus else None
                        servers.append(await start(kind, cpu))
                    rows += await run_setup(label, servers, args)
                finally:
                    for server in servers:
                        server.stop()
            return rows
        finally:
            if mongod is not None:
                mongod.stop()
            redis.stop()


def table(rows: Sequence[tuple[str, StepResult, float]]) -> str:
    head = (
        f"{'set-up':<24}{'msg/s':>7}{'offered/s':>11}{'delivered/s':>13}{'loss':>7}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'ack p99':>9}{'server cpu':>12}"
    )
    lines = [head, "-" * len(head)]
    for label, step, server_cpu in rows:
        lines.append(
            f"{label:<24}{step.rate:>7.0f}{step.offered_deliveries_per_s:>11.0f}{step.deliveries_per_s:>13.0f}"
            f"{step.loss:>7.1%}{step.latency.p50:>8.1f}{step.latency.p99:>8.1f}{step.ack_latency.p99:>9.1f}"
            f"{server_cpu:>11.0%} "
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.crossprocess", description=__doc__)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--room-size", type=int, default=20)
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 300.0, 600.0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--store", choices=["mongo", "memory"], default="mongo")
    parser.add_argument("--cpus", type=int, default=4, help="pin servers to CPUs only with this many")
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    rows = asyncio.run(main_async(args))
    setting = f"{args.connections} connections in rooms of {args.room_size}, {args.store} store"
    print(f"{setting}, {os.cpu_count()} CPUs")
    print(table(rows))


if __name__ == "__main__":
    main()
