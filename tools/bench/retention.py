"""Steady-state memory of a ``make run`` server under a long run of messages (the in-memory store's bound).

    python -m tools.bench.retention [--messages 300000] [--rooms 10] [--per-room 10000]

Starts ``python -m chatio`` with the embedded defaults (in-memory store,
``CHATIO_MEMORY_MAX_MESSAGES_PER_ROOM`` = ``--per-room``, opened rate limits), connects one sender per
room with the load generator's connections and sends ``--messages`` messages of 100 characters round the
rooms, each sender keeping ``WINDOW`` unacknowledged. It reads the server's RSS (and the stored message
count from ``/api/chat/stats``) at every tenth of the run: once every room holds its ``--per-room``
messages, RSS must stay flat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import urllib.request
from typing import Final

from chatio.loadtest import framing
from chatio.loadtest.client import Connection, Tally
from tools.bench import servers

WINDOW: Final = 64
TEXT: Final = "x" * 100
CHECKPOINTS: Final = 10


async def send(conn: Connection, room: str, count: int) -> None:
    """``count`` messages in ``room``, ``WINDOW`` at a time in flight."""
    pending: set[asyncio.Task[bytes]] = set()
    for _ in range(count):
        if len(pending) >= WINDOW:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        payload = {"room": room, "text": TEXT}
        pending.add(asyncio.ensure_future(conn.request("send_message", payload, timeout=30)))
    if pending:
        await asyncio.gather(*pending)


def stored_messages(url: str) -> int:
    with urllib.request.urlopen(f"{url}/api/chat/stats", timeout=10) as answer:
        return int(json.loads(answer.read())["messages"])


async def measure(total: int, rooms: int, per_room: int) -> None:
    kind = servers.ServerKind(
        "chatio",
        "chatio",
        "python -m chatio, embedded defaults",
        {**servers.CHATIO_BENCH_ENV, "CHATIO_MEMORY_MAX_MESSAGES_PER_ROOM": str(per_room)},
        None,
    )
    server = await servers.start(kind, None)
    try:
        target = framing.Target.parse(server.url)
        senders = []
        for n in range(rooms):
            conn = await Connection.open(
                target, {"username": f"sender{n}"}, Tally(), sampling=False, timeout=10
            )
            await conn.request("join_room", {"room": f"room{n}"}, timeout=10)
            senders.append(conn)
        start_kib = server.rss_kib()
        print(f"{total:,} messages of {len(TEXT)} characters into {rooms} rooms, {per_room:,} kept per room")
        print(f"RSS after start and {rooms} connections: {start_kib / 1024:.1f} MiB\n")
        print("| messages sent | stored | RSS MiB |")
        print("|---:|---:|---:|")
        step = total // CHECKPOINTS // rooms
        samples = []
        for checkpoint in range(1, CHECKPOINTS + 1):
            await asyncio.gather(*(send(conn, f"room{n}", step) for n, conn in enumerate(senders)))
            rss = server.rss_kib() / 1024
            samples.append(rss)
            stored = await asyncio.to_thread(stored_messages, server.url)
            print(f"| {checkpoint * step * rooms:,} | {stored:,} | {rss:.1f} |")
        full = next((i for i in range(CHECKPOINTS) if (i + 1) * step >= per_room), CHECKPOINTS - 1)
        grown, more = samples[-1] - samples[full], (CHECKPOINTS - 1 - full) * step * rooms
        print(
            f"\nfrom the first checkpoint with every room full to the last: RSS {samples[full]:.1f} -> "
            f"{samples[-1]:.1f} MiB ({grown:+.1f} MiB over {more:,} more messages)"
        )
        for conn in senders:
            conn.close()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.retention", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--messages", type=int, default=300_000, help="messages to send (default 300000)")
    parser.add_argument("--rooms", type=int, default=10, help="rooms, one sender each (default 10)")
    parser.add_argument("--per-room", type=int, default=10_000, help="messages kept per room (default 10000)")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(measure(args.messages, args.rooms, args.per_room))
    else:
        uvloop.run(measure(args.messages, args.rooms, args.per_room))


if __name__ == "__main__":
    main()
