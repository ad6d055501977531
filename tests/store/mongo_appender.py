"""A separate process appending to one room through MongoStore, for the multi-process and kill -9 tests.

    python tests/store/mongo_appender.py URI DATABASE ROOM COUNT [--concurrency N] [--user NAME]

Prints ``ready`` once started, then waits for a line on stdin (so that several appenders can be released
together): ``go`` starts at once, ``go T`` at the wall-clock instant T (seconds since the epoch), so that
several processes start writing at the same moment. Then it prints the seq of every acknowledged
message, one per line, as soon as it is acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from chatio.store import Draft
from chatio.store.mongo import MongoStore


async def append_all(args: argparse.Namespace) -> None:
    store = MongoStore(args.uri, args.database, timeout_seconds=5.0)
    await store.start()
    print("ready", flush=True)
    start = (await asyncio.to_thread(sys.stdin.readline)).split()
    if len(start) == 2:
        await asyncio.sleep(max(0.0, float(start[1]) - time.time()))
    numbers = iter(range(args.count))

    async def worker() -> None:
        for n in numbers:
            draft = Draft(args.room, f"id-{args.user}", args.user, f"{args.user} {n}", f"{args.user}-{n}")
            message = await store.append(draft)
            sys.stdout.write(f"{message.seq}\n")
            sys.stdout.flush()

    try:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("uri")
    parser.add_argument("database")
    parser.add_argument("room")
    parser.add_argument("count", type=int)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--user", default="appender")
    asyncio.run(append_all(parser.parse_args()))


if __name__ == "__main__":
    main()
