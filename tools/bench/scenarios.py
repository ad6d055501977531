"""The bench's scenarios, each run against every server kind so that every figure has a ratio.

* fan-out: 2,000 clients in rooms of 50; a moderate hold at 10,000 deliveries/s (delivery and ack
  latency), the send rate stepped up until p99 passes 100 ms, then a profile at 70 % of the rate kept;
* idle capacity: 10,000 clients in rooms of 50 on a fresh server, RSS per connection, then 5,000
  deliveries/s over all of them;
* calibration: the fan-out ladder against the firehose server, to find the generator's own ceiling;
* hooks: other engineers' benches (``python -m tools.bench.<name>``), run as they are.

Every server is started fresh for each scenario and stopped by PID at the end of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Final, TextIO

from chatio.loadtest import LoadConfig, RampResult, StepResult, Swarm
from chatio.loadtest.stats import CpuMeter, MachineMeter
from chatio.loadtest.swarm import CEILING_CPU
from tools.bench import profile, servers
from tools.bench.servers import Server, ServerKind

ROOM_SIZE: Final = 50
FANOUT_CLIENTS: Final = 2_000
IDLE_CLIENTS: Final = 10_000
MODERATE_DELIVERIES: Final = 10_000
IDLE_LOADED_DELIVERIES: Final = 5_000
P99_LIMIT_MS: Final = 100.0
# Deliveries per second, each step about sqrt(2) above the last.
LADDER: Final = (2_500, 3_500, 5_000, 7_000, 10_000, 14_000, 20_000, 28_000, 40_000, 56_000, 80_000,
                 113_000, 160_000, 226_000, 320_000)  # fmt: skip
# The profile is taken at this share of the server's sustained fan-out rate.
PROFILE_SHARE: Final = 0.7
CALIBRATION: Final = (50_000, 100_000, 150_000, 200_000, 250_000, 300_000)
HOOK_TIMEOUT_SECONDS: Final = 300.0
# Before each scenario the bench waits up to this long for other processes to use less than this.
QUIET_WAIT_SECONDS: Final = 30.0
QUIET_CORES: Final = 0.25
# What ended a ladder: the server is flat out at this CPU. A missed step taken while something else may
# have caused the miss is held again, up to RUNG_ATTEMPTS holds in all.
SATURATED_CPU: Final = 0.9
RUNG_ATTEMPTS: Final = 3
# Other processes using this much during a missed step make the miss inconclusive.
NOISY_CORES: Final = 0.5


@dataclasses.dataclass(frozen=True, slots=True)
class Timing:
    """Seconds per hold; ``quick()`` is for trying the bench out, not for figures."""

    step: float = 4.0
    moderate: float = 8.0
    idle_loaded: float = 8.0
    profile: float = 4.0
    drain: float = 3.0

    @classmethod
    def quick(cls) -> Timing:
        return cls(step=1.5, moderate=2.0, idle_loaded=2.0, profile=2.0, drain=1.0)


@dataclasses.dataclass(frozen=True, slots=True)
class Fanout:
    steps: list[StepResult]
    verdicts: list[str]  # "" for a step that kept up, else why not
    sustained: float  # measured deliveries/s of the highest step that kept up; 0 if none did
    limited_by: str  # see limit()


@dataclasses.dataclass(frozen=True, slots=True)
class Idle:
    ramp: RampResult
    rss_before_kib: int
    rss_after_kib: int
    loaded: StepResult | None

    @property
    def per_connection_kib(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / max(self.ramp.connected, 1)


@dataclasses.dataclass(slots=True)
class ServerRun:
    """Everything measured on one kind of server."""

    kind: ServerKind
    ramp: RampResult | None = None
    moderate: StepResult | None = None
    fanout: Fanout | None = None
    idle: Idle | None = None
    profile: profile.Profile | str | None = None
    failures: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class Hook:
    title: str
    module: str
    output: str | None  # None: the module does not exist yet
    status: int | None
    seconds: float


class Bench:
    """Runs scenarios with the generator on this process's CPU and servers on ``server_cpu``."""

    def __init__(self, timing: Timing, server_cpu: int | None, out: TextIO) -> None:
        self.timing = timing
        self.server_cpu = server_cpu
        self.out = out
        # Scenario -> speed_gauge() readings, one before each hold of it.
        self.gauges: dict[str, list[float]] = {}
        self._scenario_of: dict[int, str] = {}  # id(swarm) -> scenario
        # Whoever measures holds this; asyncio.Lock is fair, so two fan-out scenarios run at once
        # take turns, hold by hold.
        self._turn = asyncio.Lock()

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    async def wait_quiet(self) -> float:
        """Wait (up to QUIET_WAIT_SECONDS) until other processes use under QUIET_CORES; return their use."""
        deadline = time.monotonic() + QUIET_WAIT_SECONDS
        machine, mine = MachineMeter(), CpuMeter()
        while True:
            await asyncio.sleep(1.0)
            others = max(0.0, machine.lap().task_cores - mine.lap())
            if others < QUIET_CORES or time.monotonic() >= deadline:
                if others >= QUIET_CORES:
                    self.say(f"    other processes still use {others:.0%} of a core: measuring anyway")
                return others
            self.say(f"    other processes use {others:.0%} of a core: waiting for quiet")

    async def _start(self, kind: ServerKind) -> Server:
        await self.wait_quiet()
        server = await servers.start(kind, self.server_cpu)
        self.say(f"--- {kind.name} started, pid {server.pid}, {server.url}")
        return server

    @contextlib.asynccontextmanager
    async def _server(self, kind: ServerKind) -> AsyncIterator[Server]:
        server = await self._start(kind)
        try:
            yield server
        finally:
            server.stop()

    def _swarm(self, server: Server, clients: int, scenario: str) -> Swarm:
        swarm = Swarm(self._config(server, clients), self.out)
        self._scenario_of[id(swarm)] = f"{scenario}, {server.kind.name}"
        return swarm

    def _config(self, server: Server, clients: int) -> LoadConfig:
        return LoadConfig(
            target_url=server.url,
            conn_count=clients,
            batch_size=500,
            batch_delay_ms=0,
            room_size=ROOM_SIZE,
            client_id="bench",
            drain_sec=self.timing.drain,
            connect_timeout=30.0,
            server_pid=server.pid,
        )

    async def _hold(self, swarm: Swarm, deliveries: float, seconds: float, label: str) -> StepResult:
        async with self._turn:
            return await self._hold_now(swarm, deliveries, seconds, label)

    async def _hold_now(self, swarm: Swarm, deliveries: float, seconds: float, label: str) -> StepResult:
        rate = deliveries / (ROOM_SIZE - 1)
        scenario = self._scenario_of.get(id(swarm), "?")
        self.gauges.setdefault(scenario, []).append(speed_gauge())
        self.say(
            f"    {scenario}: {label}: {deliveries:,.0f} deliveries/s ({rate:.0f} messages/s), {seconds:g}s"
        )
        step = await swarm.hold(rate, seconds, label=f"{label} ")
        await swarm.settle(quiet_seconds=0.3, limit_seconds=10)
        return step

    # --- fan-out -----------------------------------------------------------------------------------

    async def fanout(self, run: ServerRun, *, with_profile: bool) -> None:
        """Run concurrently for several servers, this takes turns with the others hold by hold."""
        async with self._turn:
            server = await self._start(run.kind)
        swarm = self._swarm(server, FANOUT_CLIENTS, "fan-out")
        try:
            async with self._turn:
                run.ramp = await swarm.ramp()
            if run.ramp.failed:
                run.failures.append(f"fan-out ramp: {run.ramp.failed} connections failed {run.ramp.errors}")
            await self._hold(swarm, 2_500, 2, "warm-up")
            run.moderate = await self._hold(swarm, MODERATE_DELIVERIES, self.timing.moderate, "moderate")
            run.fanout = await self.ladder(swarm, LADDER)
            if with_profile and run.kind.python:
                rate = max(PROFILE_SHARE * run.fanout.sustained, LADDER[0])
                async with self._turn:
                    run.profile = await self._profile(swarm, server, rate)
        finally:
            async with self._turn:
                await swarm.close()
                server.stop()

    async def _profile(self, swarm: Swarm, server: Server, deliveries: float) -> profile.Profile | str:
        await swarm.settle(quiet_seconds=1.0, limit_seconds=15)
        seconds = self.timing.profile
        hold = asyncio.create_task(self._hold_now(swarm, deliveries, seconds + 1.5, "profile"))
        await asyncio.sleep(0.5)
        result = await profile.record(server.pid, seconds)
        await hold
        return result

    async def ladder(self, swarm: Swarm, rungs: Sequence[float]) -> Fanout:
        """Step up through ``rungs`` until a rung misses; then try once between the last two."""
        steps: list[StepResult] = []
        verdicts: list[str] = []
        passed: float | None = None
        for deliveries in rungs:
            if await self._rung(swarm, deliveries, steps, verdicts):
                passed = deliveries
                continue
            if passed is not None and deliveries / passed > 1.2:
                await self._rung(swarm, math.sqrt(passed * deliveries), steps, verdicts)
            break
        kept = [s.deliveries_per_s for s, v in zip(steps, verdicts, strict=True) if not v]
        failed = [s for s, v in zip(steps, verdicts, strict=True) if v]
        return Fanout(steps, verdicts, max(kept, default=0.0), limit(failed))

    async def _rung(
        self, swarm: Swarm, deliveries: float, steps: list[StepResult], verdicts: list[str]
    ) -> bool:
        """Hold one rate; every hold is reported. A miss is confirmed by a second hold unless the server
        was flat out, and a third is allowed when something else could explain the misses (other
        processes, or the generator near its ceiling): one stall is not a rate the server cannot keep."""
        for attempt in range(RUNG_ATTEMPTS):
            label = f"ladder {deliveries:,.0f}/s" + (f" #{attempt + 1}" if attempt else "")
            step = await self._hold(swarm, deliveries, self.timing.step, label)
            steps.append(step)
            verdicts.append(verdict(step))
            if not verdicts[-1]:
                return True
            if step.server_cpu is not None and step.server_cpu >= SATURATED_CPU:
                return False
            if attempt >= 1 and not disturbed(step):
                return False
        return False

    # --- idle capacity -----------------------------------------------------------------------------

    async def idle(self, run: ServerRun) -> None:
        async with self._server(run.kind) as server:
            await asyncio.sleep(1.0)
            before = server.rss_kib()
            swarm = self._swarm(server, IDLE_CLIENTS, "idle")
            try:
                ramp = await swarm.ramp()
                if ramp.failed:
                    run.failures.append(f"idle ramp: {ramp.failed} connections failed {ramp.errors}")
                await asyncio.sleep(3.0)
                after = server.rss_kib()
                self.say(f"    RSS {before:,} KiB -> {after:,} KiB for {ramp.connected:,} connections")
                await self._hold(swarm, 1_000, 1, "warm-up")
                loaded = await self._hold(
                    swarm, IDLE_LOADED_DELIVERIES, self.timing.idle_loaded, "10k loaded"
                )
                run.idle = Idle(ramp, before, after, loaded)
            finally:
                await swarm.close()

    # --- calibration -------------------------------------------------------------------------------

    async def calibrate(self) -> list[StepResult]:
        """Hold CALIBRATION rates against the firehose server: the generator's own limit. A hold
        disturbed by other processes is taken again (up to RUNG_ATTEMPTS times), keeping the least
        disturbed: this measures what the generator can do, not what it could do beside others."""
        async with self._server(servers.FIREHOSE) as server:
            swarm = self._swarm(server, FANOUT_CLIENTS, "calibration")
            try:
                await swarm.ramp()
                await self._hold(swarm, 10_000, 1, "warm-up")
                steps = []
                for deliveries in CALIBRATION:
                    attempts = []
                    for attempt in range(RUNG_ATTEMPTS):
                        label = f"calibrate {deliveries:,}/s" + (f" #{attempt + 1}" if attempt else "")
                        attempts.append(await self._hold(swarm, deliveries, self.timing.step, label))
                        if (attempts[-1].others_cpu or 0.0) < QUIET_CORES:
                            break
                    steps.append(min(attempts, key=lambda step: step.others_cpu or 0.0))
                return steps
            finally:
                await swarm.close()


def speed_gauge() -> float:
    """Milliseconds for a fixed pure-Python workload on this CPU (best of two; lower is faster).

    The virtual machines this runs on change speed with their neighbours, unseen from inside; a gauge
    taken before each scenario shows such drift between the figures it compares.
    """
    best = math.inf
    for _ in range(2):
        started = time.perf_counter()
        total, table = 0, {}
        for i in range(200_000):
            total += i * i % 7
            table[i & 1023] = total
        best = min(best, time.perf_counter() - started)
    return best * 1000


def limit(failed: Sequence[StepResult]) -> str:
    """What ended the ladder, judged from the last missed hold."""
    if not failed:
        return "ladder top: the server kept up with every rate tried"
    last = failed[-1]
    if last.server_cpu is not None and last.server_cpu >= SATURATED_CPU:
        return f"server CPU ({last.server_cpu:.0%})"
    if last.generator_cpu >= CEILING_CPU:
        return f"generator CPU ({last.generator_cpu:.0%}): the figure is a lower bound"
    if last.others_cpu is not None and last.others_cpu >= NOISY_CORES:
        return f"inconclusive: other processes used {last.others_cpu:.0%} of a core"
    if last.near_ceiling:
        return "generator's CPU busy with kernel network work: the figure is a lower bound"
    server = "?" if last.server_cpu is None else f"{last.server_cpu:.0%}"
    return f"server latency (p99) with CPU to spare ({server})"


def disturbed(step: StepResult) -> bool:
    """Whether something besides the server could explain a miss: other processes using QUIET_CORES
    or more, or the generator near its ceiling."""
    others = step.others_cpu is not None and step.others_cpu >= QUIET_CORES
    return others or step.near_ceiling


def verdict(step: StepResult) -> str:
    """Empty when the step kept up (p99 within P99_LIMIT_MS, nothing lost, no failed ack)."""
    reasons = []
    if step.latency.p99 > P99_LIMIT_MS:
        reasons.append(f"p99 {step.latency.p99:,.0f} ms")
    if step.loss > 0:
        reasons.append(f"loss {step.loss:.2%}")
    if step.ack_errors:
        reasons.append(f"{sum(step.ack_errors.values())} failed acks")
    return ", ".join(reasons)


async def run_hook(title: str, module: str) -> Hook:
    """Run ``python -m <module>`` (another engineer's bench) and keep what it prints."""
    if importlib.util.find_spec(module) is None:
        return Hook(title, module, None, None, 0.0)
    started = time.monotonic()
    # Children inherit this process's CPU pin; the hooked bench gets every CPU back.
    every_cpu = set(range(os.cpu_count() or 1))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: os.sched_setaffinity(0, every_cpu),
    )
    try:
        async with asyncio.timeout(HOOK_TIMEOUT_SECONDS):
            output, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return Hook(title, module, f"(stopped after {HOOK_TIMEOUT_SECONDS:.0f}s)", None, HOOK_TIMEOUT_SECONDS)
    text = output.decode(errors="replace").strip()
    return Hook(title, module, text, proc.returncode, time.monotonic() - started)
