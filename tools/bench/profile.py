"""Where a server's CPU goes: py-spy samples of a running PID, summarised by package and by function.

py-spy (``pip install py-spy``; it needs ptrace rights over the server, e.g. root) samples Python stacks
from outside the process. Time spent in C code (uvloop's loop, socket syscalls, json) is charged to the
Python frame that called it; time in uvloop's own loop, outside any Python callback, shows as the loop.
Samples pause the server briefly, so the bench profiles in a separate, unmeasured hold.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Final

SAMPLES_PER_SECOND: Final = 250
WRAPPER_SHARE: Final = 0.6
LOOP_FRAME: Final = "Runner.run (asyncio/runners.py)"


@dataclasses.dataclass(frozen=True, slots=True)
class Profile:
    """Fractions of the sampled (non-idle) time."""

    samples: int
    by_package: list[tuple[str, float]]
    top_self: list[tuple[str, float]]
    top_inclusive: list[tuple[str, float]]


def py_spy() -> str | None:
    """Path of the py-spy executable beside this interpreter or on PATH, if any."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float) -> Profile | str:
    """Sample ``pid`` for ``seconds``; a :class:`Profile`, or why there is none."""
    tool = py_spy()
    if tool is None:
        return "py-spy is not installed (pip install py-spy)"
    handle, name = tempfile.mkstemp(prefix="chatio-profile-", suffix=".txt")
    os.close(handle)
    argv = [tool, "record", "--pid", str(pid), "--duration", str(round(seconds)), "--rate"]
    argv += [str(SAMPLES_PER_SECOND), "--format", "raw", "--function", "--output", name]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            async with asyncio.timeout(seconds + 30):
                _out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return "py-spy did not finish in time"
        if proc.returncode != 0:
            return f"py-spy failed: {err.decode(errors='replace').strip().splitlines()[:1]}"
        return summarise(await asyncio.to_thread(Path(name).read_text))
    finally:
        await asyncio.to_thread(Path(name).unlink, missing_ok=True)


def summarise(collapsed: str, top: int = 12) -> Profile:
    """Summarise py-spy's raw (collapsed stack) output: ``frame;frame;... count`` per line."""
    by_package: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";")]
        total += count
        self_time[frames[-1]] += count
        by_package[_package(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return Profile(0, [], [], [])

    def share(counter: Counter[str], skip: frozenset[str] = frozenset()) -> list[tuple[str, float]]:
        rows = [(name, n / total) for name, n in counter.most_common() if name not in skip]
        return rows[:top]

    # Frames under most samples are wrappers (main(), the loop, the WebSocket handler): leave them out.
    outer = frozenset(name for name, n in inclusive.items() if n > WRAPPER_SHARE * total)
    return Profile(total, share(by_package), share(self_time), share(inclusive, outer))


def _function(frame: str) -> str:
    """``func (path/file.py:123)`` -> ``func (path/file.py)``: lines differ within one function."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path})"


def _package(frame: str) -> str:
    if frame == LOOP_FRAME:
        return "event loop: uvloop's C loop, socket reads and writes"
    path = frame.partition(" (")[2].rstrip(")")
    top = path.split("/", 1)[0]
    return {
        "asyncio": "asyncio (Python): tasks, queues, wait_for",
        "socketio": "python-socketio",
        "engineio": "python-engineio",
        "aiohttp": "aiohttp (WebSocket frames, HTTP)",
        "json": "json (stdlib)",
        "chatio": "chatio",
        "marshmallow": "marshmallow",
    }.get(top, top)
