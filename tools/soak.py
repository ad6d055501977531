"""``make soak``: the fault suite of the delivery guarantee, repeated, outside ``make test``.

Runs ``tests/e2e/test_faults.py``'s Redis restart and SIGTERM drain ``--repetitions`` times each (three
chatio processes behind HAProxy, python-socketio and npm socket.io-client clients over WebSocket and
long-polling), then prints one line per fault from the report the tests append to: rounds, acknowledged
messages, messages missing at any client (every round asserts zero), reconnects and out-of-order arrivals.
Exits with pytest's status.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TESTS = "tests/e2e/test_faults.py"
SELECTION = "redis_restarts or sigterm_drains"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=10, help="rounds per fault (default 10)")
    parser.add_argument("--report", type=Path, default=Path(".soak/report.jsonl"), help="figures, JSON lines")
    args = parser.parse_args(argv)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.unlink(missing_ok=True)
    env = {
        **os.environ,
        "CHATIO_SOAK_REPETITIONS": str(args.repetitions),
        "CHATIO_SOAK_REPORT": str(args.report.resolve()),
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TESTS, "-k", SELECTION]
    status = subprocess.run(command, env=env, check=False).returncode
    rounds = (
        [json.loads(line) for line in args.report.read_text().splitlines()] if args.report.exists() else []
    )
    for line in summary(rounds):
        print(line)
    return status


def summary(rounds: list[dict[str, Any]]) -> list[str]:
    """One line per fault: its rounds and their totals."""
    by_fault: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for entry in rounds:
        by_fault[entry["fault"]].append(entry)
    lines = []
    for fault, entries in by_fault.items():
        clients = [c for entry in entries for c in entry["clients"].values()]
        lines.append(
            f"{fault}: {len(entries)} rounds, {len(entries[0]['clients'])} clients each, "
            f"{sum(e['acknowledged'] for e in entries)} acknowledged messages, "
            f"{sum(e['missing'] for e in entries)} missing at any client, "
            f"{sum(c['reconnects'] for c in clients)} reconnects, "
            f"{sum(c['outOfOrder'] for c in clients)} out-of-order arrivals, "
            f"{max(e['seconds'] for e in entries):g} s longest round"
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
