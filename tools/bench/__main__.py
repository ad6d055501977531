"""``python -m tools.bench`` (``make bench``): run every scenario against chatio, plain python-socketio and
Node's socket.io, calibrate the generator, run the hooked benches, and write docs/performance.md.

The bench process is the load generator: it pins itself to one CPU and each server to another (when
there are two), and raises its own RLIMIT_NOFILE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from chatio.loadtest.__main__ import raise_file_limit
from tools.bench import servers
from tools.bench.chart import CHART, fanout_chart
from tools.bench.report import BenchRun, figures, render, summary
from tools.bench.scenarios import FANOUT_CLIENTS, IDLE_CLIENTS, Bench, ServerRun, Timing, run_hook

DEFAULT_OUT: Final = Path(__file__).resolve().parent.parent.parent / "docs" / "performance.md"
HOOKS: Final = (
    ("Where an idle connection's memory goes", "tools.bench.memory"),
    ("Persistence (issue: durable messages through MongoDB)", "tools.bench.persistence"),
    ("Cross-process fan-out (issue: several chatio processes behind Redis)", "tools.bench.crossprocess"),
    ("Classic vs sharded fan-out on a Redis Cluster (issue 13)", "tools.bench.sharding"),
    (
        "Steady-state memory under a long run of messages (issue 16: the bounded memory store)",
        "tools.bench.retention",
    ),
)
SCENARIOS: Final = ("calibrate", "fanout", "idle", "profile", "hooks")


def _placement() -> tuple[int | None, int | None]:
    """(server CPU, generator CPU): the first two CPUs this process may use, or no pinning."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return allowed[0], allowed[1]


async def run(args: argparse.Namespace) -> BenchRun:
    started = time.monotonic()
    server_cpu, generator_cpu = _placement()
    if generator_cpu is not None:
        os.sched_setaffinity(0, {generator_cpu})
    timing = Timing.quick() if args.quick else Timing()
    bench = Bench(timing, server_cpu, sys.stdout)
    chosen = set(args.only or SCENARIOS)
    ours, theirs, node = ServerRun(servers.CHATIO), ServerRun(servers.BASELINE), ServerRun(servers.NODE)
    others = (theirs, node, ours)
    calibration = []
    if "calibrate" in chosen:
        bench.say("=== calibration: the generator against the firehose server")
        calibration = await bench.calibrate()
    if "fanout" in chosen:
        bench.say("=== fan-out: python-socketio, Node's socket.io and chatio side by side, taking turns")
        await asyncio.gather(*(bench.fanout(r, with_profile="profile" in chosen) for r in others))
    if "idle" in chosen:
        for server_run in others:
            bench.say(f"=== idle capacity: {server_run.kind.name}")
            await bench.idle(server_run)
    hooks = []
    if "hooks" in chosen:
        for title, module in HOOKS:
            bench.say(f"=== hook: python -m {module}")
            hooks.append(await run_hook(title, module))
    return BenchRun(
        chatio=ours,
        baseline=theirs,
        node=node,
        calibration=calibration,
        hooks=hooks,
        server_cpu=server_cpu,
        generator_cpu=generator_cpu,
        command=shlex.join(["python", "-m", "tools.bench", *args.argv]),
        seconds=time.monotonic() - started,
        quick=args.quick,
        gauges=bench.gauges,
    )


def _measure(args: argparse.Namespace) -> BenchRun:
    raise_file_limit(max(FANOUT_CLIENTS, IDLE_CLIENTS) + 256)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(args))
    return uvloop.run(run(args))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown file to write")
    parser.add_argument("--quick", action="store_true", help="short steps: try the bench, not for figures")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run only these (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the headline figures as JSON here")
    parser.add_argument("--save", type=Path, help="also keep everything measured (a pickle) for --render")
    parser.add_argument(
        "--render", type=Path, metavar="SAVED", help="measure nothing: rewrite --out from SAVED"
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    # --render reads only a file this bench wrote with --save (pickle: never load one from elsewhere).
    result: BenchRun = pickle.loads(args.render.read_bytes()) if args.render else _measure(args)
    if args.save:
        args.save.write_bytes(pickle.dumps(result))
    args.out.write_text(render(result))
    chart = args.out.with_name(CHART)
    chart.write_text(fanout_chart(result))
    if args.json:
        args.json.write_text(json.dumps(figures(result), indent=2) + "\n")
    print("\n" + summary(result))
    print(
        f"wrote {args.out} ({result.seconds / 60:.1f} min): the figures above, the steps, profiles and more"
    )


if __name__ == "__main__":
    main()
