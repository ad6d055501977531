"""The swarm: open connections in batches, join rooms, then hold send rates and measure what arrives.

Load is open-loop: messages leave on a clock whatever the server's acknowledgements do, so a slow server
shows up as latency and backlog instead of quietly slowing the generator down. A step's deliveries are
owed to the other members of the sender's room; after the step the swarm waits (up to ``drain_sec``)
for what is still owed. What is still missing at that cut-off is reported apart: the swarm listens on
(up to ``drain_sec`` again, until half a second passes without a delivery), counts what arrives as
*after the cut-off*, and only what never comes is loss.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import time
from array import array
from collections import Counter
from typing import Final, TextIO

import orjson

from chatio.loadtest import framing
from chatio.loadtest.client import Connection, PlainConnection, Tally
from chatio.loadtest.config import LoadConfig
from chatio.loadtest.stats import CpuMeter, MachineMeter, Percentiles

TICK_SECONDS: Final = 0.002
DRAIN_POLL_SECONDS: Final = 0.01
# After the cut-off, deliveries still arriving are counted (not lost) until this long passes without one.
CUTOFF_QUIET_SECONDS: Final = 0.5
# A step taken while the generator used this much of its core may be measuring the generator.
CEILING_CPU: Final = 0.85
# ... or while its core (its own time plus the kernel's network work) was this busy.
CEILING_CORE: Final = 0.92


@dataclasses.dataclass(frozen=True, slots=True)
class StepResult:
    """One held send rate. Rates are per second; ``*_cpu`` are fractions of one core."""

    rate: float
    seconds: float
    sent: int
    expected: int
    delivered: int
    delivered_in_window: int
    #: Delivered after the cut-off (owed, not yet delivered when the step's wait ended, but not lost).
    after_cutoff: int
    acked: int
    #: Sampled deliveries that arrived after a later seq of their room (see ``client``).
    late: int
    ack_errors: dict[str, int]
    drain_seconds: float
    latency: Percentiles
    ack_latency: Percentiles
    generator_cpu: float
    generator_core_busy: float | None
    server_cpu: float | None
    others_cpu: float | None
    loop_lag_max_ms: float

    @property
    def offered_deliveries_per_s(self) -> float:
        return self.expected / self.seconds

    @property
    def deliveries_per_s(self) -> float:
        """Deliveries over the time from the first send to the last delivery."""
        return self.delivered / (self.seconds + self.drain_seconds)

    @property
    def undelivered_at_cutoff(self) -> int:
        return max(0, self.expected - self.delivered)

    @property
    def loss(self) -> float:
        """What never arrived, late deliveries not counted as lost."""
        lost = max(0, self.expected - self.delivered - self.after_cutoff)
        return 0.0 if not self.expected else lost / self.expected

    @property
    def generator_us_per_delivery(self) -> float:
        return self.generator_cpu * (self.seconds + self.drain_seconds) / max(self.delivered, 1) * 1e6

    @property
    def near_ceiling(self) -> bool:
        core = self.generator_core_busy or 0.0
        return self.generator_cpu >= CEILING_CPU or core >= CEILING_CORE

    def as_json(self) -> dict[str, object]:
        data = dataclasses.asdict(self)
        data.update(
            offered_deliveries_per_s=self.offered_deliveries_per_s,
            undelivered_at_cutoff=self.undelivered_at_cutoff,
            deliveries_per_s=self.deliveries_per_s,
            loss=self.loss,
            generator_us_per_delivery=self.generator_us_per_delivery,
            near_ceiling=self.near_ceiling,
        )
        return data


@dataclasses.dataclass(frozen=True, slots=True)
class RampResult:
    connected: int
    failed: int
    seconds: float
    errors: dict[str, int]


class Swarm:
    """Every connection of one generator process, on one event loop."""

    def __init__(self, config: LoadConfig, out: TextIO) -> None:
        self.config = config
        self.out = out
        self.target = framing.Target.parse(config.target_url)
        self.tally = Tally()
        self.connections: list[Connection] = []
        self.members: Counter[str] = Counter()
        self._senders: list[tuple[Connection, bytes, int]] = []
        self._next_sender = 0

    # --- ramp --------------------------------------------------------------------------------------

    async def ramp(self) -> RampResult:
        """Open ``conn_count`` connections, ``batch_size`` at a time, each joining its room."""
        config = self.config
        started = time.monotonic()
        opened: dict[int, Connection] = {}
        for first in range(0, config.conn_count, config.batch_size):
            batch = range(first, min(first + config.batch_size, config.conn_count))
            outcomes = await asyncio.gather(*(self._open(i) for i in batch), return_exceptions=True)
            for index, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, Connection):
                    opened[index] = outcome
                else:
                    self.tally.errors[_describe(outcome)] += 1
            self._say(
                f"[ramp {time.monotonic() - started:6.1f}s] connected {len(opened)}/{config.conn_count}"
                f" errors {sum(self.tally.errors.values())}"
            )
            if batch.stop < config.conn_count and config.batch_delay_ms:
                await asyncio.sleep(config.batch_delay_ms / 1000)
        self.connections = list(opened.values())
        self._plan_senders(opened)
        # Everything allocated so far lives as long as the run: keep the collector from rescanning it.
        gc.collect()
        gc.freeze()
        return RampResult(
            len(opened), config.conn_count - len(opened), time.monotonic() - started, dict(self.tally.errors)
        )

    def target_for(self, index: int) -> framing.Target:
        """The server connection ``index`` opens to; override to spread connections over servers."""
        return self.target

    async def _open(self, index: int) -> Connection:
        config = self.config
        sampling = int((index + 1) * config.latency_sample) > int(index * config.latency_sample)
        auth = {"username": f"{config.client_id}-{index}"}
        target = self.target_for(index)
        kind = PlainConnection if target.plain else Connection
        conn = await kind.open(target, auth, self.tally, sampling=sampling, timeout=config.connect_timeout)
        room = config.room_of(index)
        try:
            answer = await conn.request("join_room", {"room": room}, config.connect_timeout)
        except BaseException:
            conn.close()
            raise
        if not framing.ack_ok(answer):
            conn.close()
            raise ConnectionRefusedError(f"join_room: {framing.ack_error_code(answer)}")
        self.members[room] += 1
        return conn

    def _plan_senders(self, opened: dict[int, Connection]) -> None:
        # Interleave rooms so that consecutive messages go to different rooms.
        size = self.config.room_size or self.config.conn_count
        order = sorted(opened, key=lambda i: (i % size, i // size))[: self.config.sender_count]
        for index in order:
            room = self.config.room_of(index)
            self._senders.append((opened[index], orjson.dumps(room), self.members[room] - 1))

    # --- conversation ------------------------------------------------------------------------------

    async def hold(self, rate: float, seconds: float, *, label: str = "") -> StepResult:
        """Send ``rate`` messages a second for ``seconds``, then drain; measure the step."""
        tally = self.tally
        tally.latency, tally.ack_latency = array("q"), array("q")
        tally.ack_errors.clear()
        delivered_before, acked_before, late_before = tally.delivered, tally.acked, tally.late
        generator_cpu, server_cpu, machine = CpuMeter(), CpuMeter(self.config.server_pid), MachineMeter()
        total = round(rate * seconds)
        progress = _Progress(self, label, delivered_before)
        sent = expected = 0
        lag_max = 0.0
        started = time.monotonic()
        while sent < total and self._senders:
            elapsed = time.monotonic() - started
            due = min(total, int(elapsed * rate) + 1)
            while sent < due:
                expected += self._send_next()
                sent += 1
            progress.maybe(sent)
            before = time.monotonic()
            await asyncio.sleep(TICK_SECONDS)
            lag_max = max(lag_max, time.monotonic() - before - TICK_SECONDS)
        window = max(time.monotonic() - started, seconds)
        in_window = tally.delivered - delivered_before
        drain = await self._drain(delivered_before + expected, progress, sent)
        used, served, cores = generator_cpu.lap(), server_cpu.lap(), machine.lap()
        at_cutoff = tally.delivered - delivered_before
        if at_cutoff < expected:
            await self.settle(CUTOFF_QUIET_SECONDS, self.config.drain_sec)
        after_cutoff = tally.delivered - delivered_before - at_cutoff
        pinned = _pinned_cpu()
        return StepResult(
            rate=rate,
            seconds=window,
            sent=sent,
            expected=expected,
            delivered=at_cutoff,
            delivered_in_window=in_window,
            after_cutoff=after_cutoff,
            acked=tally.acked - acked_before,
            late=tally.late - late_before,
            ack_errors=dict(tally.ack_errors),
            drain_seconds=drain,
            latency=Percentiles.of(tally.latency),
            ack_latency=Percentiles.of(tally.ack_latency),
            generator_cpu=used,
            generator_core_busy=None if pinned is None else cores.busy.get(pinned),
            server_cpu=served if self.config.server_pid else None,
            others_cpu=max(0.0, cores.task_cores - used - served) if self.config.server_pid else None,
            loop_lag_max_ms=lag_max * 1000,
        )

    def _send_next(self) -> int:
        conn, room_json, owed = self._senders[self._next_sender]
        self._next_sender = (self._next_sender + 1) % len(self._senders)
        conn.send_message(room_json)
        return owed

    async def _drain(self, target: int, progress: _Progress, sent: int) -> float:
        """Wait until ``target`` deliveries and every ack arrived, or ``drain_sec``; return the time to the
        last delivery seen."""
        tally = self.tally
        started = time.monotonic()
        last_change, seen = started, tally.delivered
        while time.monotonic() - started < self.config.drain_sec:
            if tally.delivered >= target and not any(c.unacknowledged for c, _r, _o in self._senders):
                break
            await asyncio.sleep(DRAIN_POLL_SECONDS)
            if tally.delivered != seen:
                last_change, seen = time.monotonic(), tally.delivered
            progress.maybe(sent)
        return last_change - started

    async def settle(self, quiet_seconds: float, limit_seconds: float) -> None:
        """Wait until nothing has arrived for ``quiet_seconds`` (at most ``limit_seconds``)."""
        started = time.monotonic()
        seen, quiet_since = self.tally.delivered, started
        while time.monotonic() - started < limit_seconds:
            await asyncio.sleep(0.05)
            if self.tally.delivered != seen:
                seen, quiet_since = self.tally.delivered, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_seconds:
                return

    async def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.connections.clear()
        await asyncio.sleep(0.2)

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)


class _Progress:
    """One line a second while a step runs: rates and p99 over the last second."""

    def __init__(self, swarm: Swarm, label: str, delivered: int) -> None:
        self.swarm = swarm
        self.label = label
        self.started = self.last = time.monotonic()
        self.delivered, self.sent, self.samples = delivered, 0, 0
        self.cpu = CpuMeter()

    def maybe(self, sent: int) -> None:
        now = time.monotonic()
        if now - self.last < 1.0:
            return
        tally, span = self.swarm.tally, now - self.last
        # A stride keeps the sort short: the loop must not stall on its own progress report.
        stride = max(1, (len(tally.latency) - self.samples) // 20_000)
        recent = Percentiles.of(tally.latency[self.samples :: stride])
        self.swarm._say(
            f"[{self.label}{now - self.started:6.1f}s] sent {(sent - self.sent) / span:8.0f}/s"
            f"  delivered {(tally.delivered - self.delivered) / span:9.0f}/s"
            f"  p99 {recent.p99:7.1f} ms  generator cpu {self.cpu.lap():4.0%}"
            f"  disconnects {tally.disconnects}"
        )
        self.last, self.delivered, self.sent, self.samples = now, tally.delivered, sent, len(tally.latency)


def _pinned_cpu() -> int | None:
    """The one CPU this process may run on, if it is pinned to exactly one."""
    allowed = os.sched_getaffinity(0)
    return next(iter(allowed)) if len(allowed) == 1 else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"[:200]
