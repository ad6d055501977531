"""Durable messages per second through :class:`~chatio.store.mongo.MongoStore`.

    python -m tools.bench.persistence [--uri URI] [--senders 1,10,100,500] [--seconds 3] [--rooms 4]

Each of N senders appends to one of a few rooms in a loop, awaiting every acknowledgement (each draft
carries a client_msg_id, like the real clients' messages), for a fixed time. The table shows, per N, the
messages acknowledged, their rate, ack latency percentiles and how the group commit batched them. Without
``--uri`` a throwaway ``mongod`` (single-member replica set, the test suite's settings) runs in a
temporary folder; every round uses a fresh database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pymongo import MongoClient
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from chatio.config import Settings
from chatio.store import Draft
from chatio.store.mongo import MongoStore
from tools.devservices import MongodProcess


class _Inserts(CommandListener):
    """Counts the insert commands (group commit batches) the store sends."""

    def __init__(self) -> None:
        self.commands = 0
        self.documents = 0

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name == "insert":
            self.commands += 1
            self.documents += len(event.command.get("documents", ()))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


@dataclass(frozen=True)
class Round:
    senders: int
    messages: int
    seconds: float
    latencies: list[float]
    inserts: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def run_round(args: argparse.Namespace, uri: str, senders: int) -> Round:
    inserts = _Inserts()
    database = f"bench_{uuid.uuid4().hex[:12]}"
    store = MongoStore(
        uri,
        database,
        write_concern=args.write_concern,
        timeout_seconds=args.timeout,
        group_commit_max_wait_ms=args.max_wait_ms,
        group_commit_max_batch=args.max_batch,
        event_listeners=[inserts],
    )
    await store.start()
    latencies: list[float] = []
    text = ("benchmark message " * 8)[: args.text_size]
    deadline = 0.0

    async def sender(number: int, phase: str) -> None:
        room = f"room-{number % args.rooms}"
        user = f"user-{number}"
        sent = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await store.append(Draft(room, user, user, text, f"{phase}-{sent}"))
            latencies.append(time.perf_counter() - started)
            sent += 1

    try:
        deadline = time.perf_counter() + args.warmup
        await asyncio.gather(*(sender(n, "warmup") for n in range(senders)))
        latencies.clear()
        commands_before = inserts.commands
        started = time.perf_counter()
        deadline = started + args.seconds
        await asyncio.gather(*(sender(n, "measured") for n in range(senders)))
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
        admin: MongoClient[dict[str, object]]
        with MongoClient(uri) as admin:
            in_database = admin[database].messages.count_documents({})
            admin.drop_database(database)
    stats = store.writer_stats
    # Every acknowledged message must be one stored message, or the figures mean nothing.
    if stats.repeats or in_database != stats.stored:
        raise RuntimeError(f"bench: {stats} but {in_database} messages in the database")
    return Round(senders, len(latencies), elapsed, latencies, inserts.commands - commands_before)


@contextlib.contextmanager
def mongodb(uri: str | None) -> Iterator[str]:
    if uri is not None:
        yield uri
        return
    workdir = Path(tempfile.mkdtemp(prefix="chatio-bench-"))
    try:
        with MongodProcess(workdir) as process:
            yield process.uri
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


COLUMNS = ("senders", "messages", "msgs/s", "p50 ms", "p99 ms", "inserts", "avg batch")


def table(rounds: Sequence[Round]) -> str:
    rows = [COLUMNS]
    for r in rounds:
        batch = r.messages / max(1, r.inserts)
        rows.append(
            (
                str(r.senders),
                str(r.messages),
                f"{r.rate:.0f}",
                f"{r.percentile(0.50):.1f}",
                f"{r.percentile(0.99):.1f}",
                str(r.inserts),
                f"{batch:.1f}",
            )
        )
    return "\n".join(
        " ".join(cell.rjust(len(title)) for cell, title in zip(row, COLUMNS, strict=True)) for row in rows
    )


async def run(args: argparse.Namespace, uri: str) -> list[Round]:
    rounds = []
    for senders in args.senders:
        rounds.append(await run_round(args, uri, senders))
        print(table(rounds[-1:]).splitlines()[-1], flush=True)
    return rounds


def _senders(raw: str) -> list[int]:
    return [int(part) for part in raw.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.persistence", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--uri", help="MongoDB replica set URI (default: start a throwaway mongod)")
    parser.add_argument(
        "--senders", type=_senders, default=[1, 10, 100, 500], help="comma-separated N values"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per N")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured time per N")
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--text-size", type=int, default=60, help="characters per message")
    defaults = Settings()  # the server's defaults, so that the bench measures what runs
    parser.add_argument("--write-concern", default=defaults.mongodb_write_concern, choices=["majority", "1"])
    parser.add_argument(
        "--timeout", type=float, default=defaults.store_timeout_seconds, help="store timeout s"
    )
    parser.add_argument(
        "--max-wait-ms", type=float, default=defaults.group_commit_max_wait_ms, help="group wait"
    )
    parser.add_argument(
        "--max-batch", type=int, default=defaults.group_commit_max_batch, help="group batch size"
    )
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args(argv)
    runner = asyncio.run
    if args.loop == "uvloop":
        try:
            import uvloop  # optional: the "fast" extra
        except ImportError:
            parser.error("uvloop is not installed (pip install -e '.[fast]'), use --loop asyncio")
        runner = uvloop.run
    print(
        f"write concern {args.write_concern}, group commit max wait {args.max_wait_ms:g} ms / batch "
        f"{args.max_batch}, {args.rooms} rooms, {args.text_size}-character texts, {args.seconds:g} s per N, "
        f"{args.loop} loop"
    )
    with mongodb(args.uri) as uri:
        print(table([]), flush=True)
        rounds = runner(run(args, uri))
    latencies = [latency for r in rounds for latency in r.latencies]
    if latencies:
        print(f"all rounds: median ack {statistics.median(latencies) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
