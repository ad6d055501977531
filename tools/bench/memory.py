"""Where an idle chat connection's memory goes: tracemalloc over chatio holding N WebSocket clients.

    python -m tools.bench.memory [--clients 2000] [--room-size 50]

chatio runs in this process (``create_app`` with the bench's settings, uvloop when installed) on a free
loopback port. A child process (this module with ``--hold``) opens the clients with the load generator's
connections, each joining a room of ``--room-size``, and keeps them open. tracemalloc traces every
allocation from just before the first connection until two seconds after the last one joined; what is
still allocated then, divided by the connections, is the Python heap of one idle connection, shown by
package and by allocation site. RSS (measured by ``make bench``'s idle scenario) is higher: it also
counts the allocator's free space between live objects.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import re
import secrets
import signal
import sys
import tracemalloc
from collections import Counter
from typing import Final

from aiohttp import web

from chatio.app import create_app
from chatio.config import load_settings
from chatio.keys import SERVER
from chatio.loadtest.__main__ import raise_file_limit
from chatio.loadtest.config import LoadConfig
from chatio.loadtest.swarm import Swarm
from tools.bench.servers import CHATIO_BENCH_ENV

HOST: Final = "127.0.0.1"
SETTLE_SECONDS: Final = 2.0
_PREFIX: Final = re.compile(r".*(?:site-packages/|/lib/python3\.\d+/|/(?=chatio/))")


def relative(filename: str) -> str:
    """``package/module.py``: the path from the package (a chatio module, an installed package, stdlib)."""
    return _PREFIX.sub("", filename, count=1)


def area(filename: str) -> str:
    """A readable owner for an allocation site: a chatio module, an installed package, a stdlib module."""
    path = relative(filename).removesuffix(".py")
    if path.startswith("chatio/"):
        return path
    top = path.split("/", 1)[0]
    return f"stdlib {top}" if "/lib/python3." in filename and "site-packages" not in filename else top


def site(frame: tracemalloc.Frame) -> str:
    """``package/module.py:line``."""
    return f"{relative(frame.filename)}:{frame.lineno}"


async def hold(url: str, clients: int, room_size: int) -> None:
    """The child: open the clients, say how many joined, keep them until stopped."""
    config = LoadConfig(
        target_url=url, conn_count=clients, batch_size=250, batch_delay_ms=0, room_size=room_size
    )
    swarm = Swarm(config, io.StringIO())  # the ramp's progress lines are not wanted here
    ramp = await swarm.ramp()
    print(f"READY {ramp.connected} {ramp.failed}", flush=True)
    await asyncio.Event().wait()


async def measure(clients: int, room_size: int) -> None:
    secret = secrets.token_urlsafe(32)  # a fixed key only to keep the random-key warning out of the output
    settings = load_settings(
        {**CHATIO_BENCH_ENV, "CHATIO_HOST": HOST, "CHATIO_PORT": "0", "CHATIO_JWT_SECRET": secret}
    )
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    objects_before = len(gc.get_objects())
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tools.bench.memory",
        "--hold",
        f"http://{HOST}:{port}",
        "--clients",
        str(clients),
        "--room-size",
        str(room_size),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = (await asyncio.wait_for(child.stdout.readline(), 120)).decode().split()
        if not line or line[0] != "READY":
            raise SystemExit(f"the clients did not connect: {line}")
        connected = int(line[1])
        await asyncio.sleep(SETTLE_SECONDS)
        gc.collect()
        after = tracemalloc.take_snapshot()
        objects = len(gc.get_objects()) - objects_before
        report(before, after, connected, int(line[2]), objects, room_size)
    finally:
        tracemalloc.stop()
        child.send_signal(signal.SIGKILL)
        await child.wait()
        await app[SERVER].close_transports()
        await runner.cleanup()


def report(
    before: tracemalloc.Snapshot,
    after: tracemalloc.Snapshot,
    n: int,
    failed: int,
    objects: int,
    room_size: int,
) -> None:
    stats = after.compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in stats)
    print(f"{n:,} idle WebSocket connections in rooms of {room_size} ({failed} failed to connect)")
    print(f"traced Python heap per connection: {total / n / 1024:.1f} KiB")
    print(f"objects tracked by the garbage collector per connection: {objects / n:.1f}")
    by_area: Counter[str] = Counter()
    for stat in stats:
        by_area[area(stat.traceback[0].filename)] += stat.size_diff
    print("\nby package (bytes per connection):")
    for name, size in by_area.most_common(10):
        if size / n >= 16:
            print(f"  {size / n:7.0f}  {name}")
    print("\nlargest allocation sites (bytes and blocks per connection):")
    for stat in sorted(stats, key=lambda s: -s.size_diff)[:12]:
        where = site(stat.traceback[0])
        if where.startswith("asyncio/runners.py"):
            where += "  (inside the event loop's C code: the TCP transport and its socket)"
        print(f"  {stat.size_diff / n:7.0f} {stat.count_diff / n:5.1f}  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.memory", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=2000, help="connections to hold (default 2000)")
    parser.add_argument("--room-size", type=int, default=50, help="members per room (default 50)")
    parser.add_argument("--hold", metavar="URL", help=argparse.SUPPRESS)  # the child's role
    args = parser.parse_args()
    raise_file_limit(args.clients + 100)
    try:
        import uvloop
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    if args.hold:
        run(hold(args.hold, args.clients, args.room_size))
    else:
        run(measure(args.clients, args.room_size))


if __name__ == "__main__":
    main()
