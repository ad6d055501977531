"""Percentiles and CPU accounting for the generator (and, by PID, for the server it measures)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True, slots=True)
class Percentiles:
    """Latency summary in milliseconds; ``count`` is how many samples it was taken from."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> Percentiles:
        if not samples_ns:
            return cls(0, 0.0, 0.0, 0.0, 0.0)
        ordered = sorted(samples_ns)
        last = len(ordered) - 1

        def at(q: float) -> float:
            return ordered[min(last, int(q * len(ordered)))] / 1e6

        return cls(len(ordered), at(0.50), at(0.95), at(0.99), ordered[last] / 1e6)


class CpuMeter:
    """CPU used by this process, or by process ``pid``, as a fraction of one core between two reads."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid
        self._cpu, self._wall = self._sample(), time.monotonic()

    def _sample(self) -> float:
        if self.pid is None:
            return time.process_time()
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            return 0.0
        # After the command name: state is field 3, utime 14 and stime 15 (1-based, see proc(5)).
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def lap(self) -> float:
        """Fraction of one core used since the previous lap (or since creation)."""
        cpu, wall = self._sample(), time.monotonic()
        used = (cpu - self._cpu) / max(wall - self._wall, 1e-9)
        self._cpu, self._wall = cpu, wall
        return used


@dataclasses.dataclass(frozen=True, slots=True)
class MachineLap:
    """``busy``: CPU number -> busy fraction (softirq and steal count as busy: on loopback the kernel's
    network work lands there, and it limits as much as user time). ``task_cores``: user, nice and
    system time of every process together, in cores."""

    busy: dict[int, float]
    task_cores: float


class MachineMeter:
    """The whole machine, from ``/proc/stat``, between two laps."""

    def __init__(self) -> None:
        self._last = self._sample()

    @staticmethod
    def _sample() -> dict[int, list[int]]:
        counters: dict[int, list[int]] = {}
        with open("/proc/stat") as stat:
            for line in stat:
                name, *values = line.split()
                if name.startswith("cpu") and name != "cpu":
                    counters[int(name[3:])] = [int(value) for value in values[:8]]
        return counters

    def lap(self) -> MachineLap:
        now = self._sample()
        busy, task_ticks, elapsed = {}, 0, 0
        for cpu, ticks in now.items():
            delta = [a - b for a, b in zip(ticks, self._last.get(cpu, ticks), strict=True)]
            total = sum(delta)
            busy[cpu] = 0.0 if total <= 0 else 1.0 - (delta[3] + delta[4]) / total
            task_ticks += delta[0] + delta[1] + delta[2]
            elapsed = max(elapsed, total)
        self._last = now
        return MachineLap(busy, task_ticks / elapsed if elapsed else 0.0)


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from ``VmRSS`` in ``/proc/<pid>/status``."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise OSError(f"no VmRSS for pid {pid}")
