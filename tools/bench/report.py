"""docs/performance.md, written from one bench run: figures, each beside the baseline and the ratio.

The prose that does not depend on the run lives in :mod:`tools.bench.notes`.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from chatio.loadtest import StepResult
from tools.bench import notes, scenarios, servers
from tools.bench.profile import Profile
from tools.bench.scenarios import Hook, ServerRun


@dataclasses.dataclass(frozen=True, slots=True)
class BenchRun:
    """Everything one ``python -m tools.bench`` measured."""

    chatio: ServerRun
    baseline: ServerRun
    calibration: list[StepResult]
    hooks: list[Hook]
    server_cpu: int | None
    generator_cpu: int | None
    command: str
    seconds: float
    quick: bool
    gauges: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    node: ServerRun | None = None  # Node's socket.io (absent from runs saved before it was added)

    @property
    def servers(self) -> tuple[ServerRun, ...]:
        """chatio, python-socketio, and Node's socket.io when measured."""
        return (self.chatio, self.baseline) + ((self.node,) if self.node else ())


# Gauges further apart than this mean the scenarios ran on a machine of changing speed.
GAUGE_SPREAD: Final = 0.15


def figures(run: BenchRun) -> dict[str, float | None]:
    """The headline figures, for ``--json`` and for checks that compare runs."""
    found: dict[str, float | None] = {}
    for key, server in (("chatio", run.chatio), ("baseline", run.baseline), ("node", run.node)):
        if server is None:
            continue
        loaded = server.idle.loaded if server.idle else None
        found[f"{key}_sustained_deliveries_per_s"] = server.fanout.sustained if server.fanout else None
        found[f"{key}_p99_ms_10k_deliveries"] = server.moderate.latency.p99 if server.moderate else None
        found[f"{key}_ack_p99_ms_10k_deliveries"] = (
            server.moderate.ack_latency.p99 if server.moderate else None
        )
        found[f"{key}_p99_ms_10k_connections_5k_deliveries"] = loaded.latency.p99 if loaded else None
        found[f"{key}_kib_per_idle_connection"] = server.idle.per_connection_kib if server.idle else None
    absorbed = [s.deliveries_per_s for s in run.calibration if s.loss == 0]
    found["generator_absorbed_deliveries_per_s"] = max(absorbed, default=None)
    return found


def render(run: BenchRun) -> str:
    parts = [
        notes.HEADER.format(
            when=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            commit=_commit(),
            command=run.command,
            minutes=run.seconds / 60,
        ),
        "> **Quick run**: steps shortened for a smoke test; do not quote these figures.\n"
        if run.quick
        else "",
        _machine(run),
        _targets(run),
        _fanout(run),
        _moderate(run),
        _idle(run),
        *(_hook(hook) for hook in run.hooks),
        _calibration(run.calibration),
        _profiles(run),
        notes.HOW_IT_WORKS,
        notes.REPRODUCE,
    ]
    return "\n".join(part for part in parts if part)


#: Hooked benches that ``make bench`` prints at the end as well as writing them to docs/performance.md.
PRINTED_HOOKS: Final = frozenset({"tools.bench.sharding"})


def summary(run: BenchRun) -> str:
    """What ``make bench`` prints when it ends: the targets, every chatio ÷ python-socketio and chatio ÷ Node
    ratio."""
    parts = [
        ("Targets (issue 7), chatio", _targets_table(run)),
        ("Fan-out: 2,000 clients in rooms of 50", _fanout_table(run)),
        ("Moderate load: 10,000 deliveries/s", _moderate_table(run)),
        ("Idle capacity: 10,000 connections", _idle_table(run)),
    ]
    # Hooked benches whose table belongs in the summary too.
    parts += [
        (hook.title, hook.output + "\n") for hook in run.hooks if hook.module in PRINTED_HOOKS and hook.output
    ]
    return "\n".join(f"{title}\n\n{table}" for title, table in parts)


# --- helpers -------------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "—"
    return f"{ours / theirs:.2f}x"


def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "—" if value is None else format(value, fmt)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _cpu(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _commit() -> str:
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            return ""
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" with uncommitted changes" if git("status", "--porcelain", "--", "chatio") else "")


def _versions() -> str:
    found = []
    for package in ("aiohttp", "python-socketio", "python-engineio", "uvloop", "orjson"):
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{package} (not installed)")
    return ", ".join([*found, _node_versions()])


def _node_versions() -> str:
    """Node and the bench's socket.io, as the Node server runs them."""
    try:
        node = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        manifest = servers.NODE_DIR / "node_modules" / "socket.io" / "package.json"
        socketio = json.loads(manifest.read_text())["version"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return "Node socket.io (not installed)"
    return f"Node {node}, socket.io {socketio}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _all_steps(run: BenchRun) -> list[StepResult]:
    steps: list[StepResult] = []
    for server in (run.chatio, run.baseline):
        steps += [s for s in (server.moderate, server.idle.loaded if server.idle else None) if s]
        steps += server.fanout.steps if server.fanout else []
    return steps


# --- sections ------------------------------------------------------------------------------------------


def _machine(run: BenchRun) -> str:
    others = [s.others_cpu for s in _all_steps(run) if s.others_cpu is not None]
    placement = (
        f"servers pinned to CPU {run.server_cpu}, the generator (this bench process) to CPU "
        f"{run.generator_cpu}"
        if run.server_cpu is not None
        else "not pinned (fewer than two CPUs): server and generator share the machine"
    )
    rows = [
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} CPUs"),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_version()}; {_versions()}"),
        ("placement", placement),
        ("other processes", _others(others)),
        ("CPU speed gauge", _gauges(run.gauges)),
    ]
    return "## Machine\n\n" + _table(("", ""), rows)


def _gauges(gauges: Mapping[str, Sequence[float]]) -> str:
    medians = {name: statistics.median(values) for name, values in gauges.items() if values}
    if not medians:
        return "—"
    spread = max(medians.values()) / min(medians.values()) - 1
    shown = "; ".join(
        f"{name} {medians[name]:.0f} ({min(gauges[name]):.0f} to {max(gauges[name]):.0f})" for name in medians
    )
    verdict = "steady" if spread < GAUGE_SPREAD else "**the machine's speed drifted**: compare with care"
    return (
        f"ms for a fixed Python loop before each hold, median (range) per scenario, lower is faster: "
        f"{shown}. Spread of the medians {spread:.0%}: {verdict}"
    )


def _others(others: Sequence[float]) -> str:
    if not others:
        return "—"
    most, median = max(others), sorted(others)[len(others) // 2]
    if most < scenarios.QUIET_CORES:
        return f"quiet: at most {most:.0%} of a core during any measured step"
    return (
        f"used up to {most:.0%} of a core during a measured step (median {median:.0%}); figures taken "
        "beside them are noisier"
    )


def _targets(run: BenchRun) -> str:
    return "## Targets (issue 7), chatio\n\n" + _targets_table(run) + notes.TARGETS


def _targets_table(run: BenchRun) -> str:
    ours, theirs = run.chatio, run.baseline
    fan_ours = ours.fanout.sustained if ours.fanout else None
    fan_theirs = theirs.fanout.sustained if theirs.fanout else None
    moderate, loaded = ours.moderate, ours.idle.loaded if ours.idle else None
    memory = ours.idle.per_connection_kib if ours.idle else None
    ratio = None if not fan_ours or not fan_theirs else fan_ours / fan_theirs
    # The hold that ended each ladder decides how much other load could have skewed the ratio.
    ladder_noise = [
        server.fanout.steps[-1].others_cpu
        for server in (ours, theirs)
        if server.fanout and server.fanout.verdicts[-1] and server.fanout.steps[-1].others_cpu is not None
    ]
    rows = [
        (
            "fan-out kept up ≥ 6x python-socketio",
            f"{_num(fan_ours)}/s vs {_num(fan_theirs)}/s: {_ratio(fan_ours, fan_theirs)}",
            _cpu(max(ladder_noise, default=None)),
            _status(None if ratio is None else ratio >= 6, max(ladder_noise, default=None)),
        ),
        (
            "p99 ≤ 10 ms at 10,000 deliveries/s (2,000 clients)",
            f"{_ms(moderate.latency.p99 if moderate else None)} ms",
            _cpu(moderate.others_cpu if moderate else None),
            _status(
                None if moderate is None else moderate.latency.p99 <= 10,
                moderate.others_cpu if moderate else None,
            ),
        ),
        (
            "p99 ≤ 20 ms at 5,000 deliveries/s over 10,000 connections",
            f"{_ms(loaded.latency.p99 if loaded else None)} ms",
            _cpu(loaded.others_cpu if loaded else None),
            _status(
                None if loaded is None else loaded.latency.p99 <= 20, loaded.others_cpu if loaded else None
            ),
        ),
        (
            "≤ 15 KiB per idle WebSocket connection",
            f"{_num(memory, '.1f')} KiB",
            "",
            _status(None if memory is None else memory <= 15, None),
        ),
        (
            "≤ 7.7 KiB per idle WebSocket: no regression (issue 12)",
            f"{_num(memory, '.1f')} KiB",
            "",
            _status(None if memory is None else memory <= 7.7, None),
        ),
    ]
    header = ("target", "measured", "other processes' cpu meanwhile", "status")
    return _table(header, rows)


def _status(ok: bool | None, others: float | None) -> str:
    if ok is None:
        return "—"
    text = "met" if ok else "**not met**"
    if others is not None and others >= scenarios.NOISY_CORES:
        text += " (other load: rerun on a quiet machine)"
    return text


def _three(label: str, pick: Callable[[ServerRun], float | None], run: BenchRun, fmt: str) -> list[str]:
    ours, theirs = pick(run.chatio), pick(run.baseline)
    node = pick(run.node) if run.node else None
    shown = _ms if fmt == "ms" else _cpu if fmt == "%" else lambda v: _num(v, fmt)
    return [label, shown(ours), shown(theirs), shown(node), _ratio(ours, theirs), _ratio(ours, node)]


_HEAD = ("", "chatio", "python-socketio", "Node socket.io", "chatio ÷ python-socketio", "chatio ÷ Node")


def _fanout(run: BenchRun) -> str:
    text = notes.FANOUT + "\n" + _fanout_table(run) + notes.CHART
    for server in run.servers:
        if server.fanout:
            text += f"\n{server.kind.name}, step by step:\n\n" + _steps(
                server.fanout.steps, server.fanout.verdicts
            )
        text += "".join(f"\n> {server.kind.name}: {failure}\n" for failure in server.failures)
    return text


def _fanout_table(run: BenchRun) -> str:
    def fan(server: ServerRun) -> float | None:
        return server.fanout.sustained if server.fanout else None

    rows = [_three("sustained deliveries/s (p99 ≤ 100 ms, no loss)", fan, run, ",.0f")]
    limits = [(s.fanout.limited_by if s.fanout else "—") for s in (run.chatio, run.baseline, run.node) if s]
    rows.append(["limited by", *limits, *[""] * (len(_HEAD) - 1 - len(limits))])
    return _table(_HEAD, rows)


def _steps(steps: Sequence[StepResult], verdicts: Sequence[str]) -> str:
    header: tuple[str, ...] = ("offered/s", "delivered/s", "p50 ms", "p99 ms", "max ms", "server cpu")
    header += ("generator cpu", "generator's CPU busy", "others", "kept up")
    rows = []
    for step, why in zip(steps, verdicts, strict=True):
        rows.append(
            (
                _num(step.offered_deliveries_per_s),
                _num(step.deliveries_per_s),
                _ms(step.latency.p50),
                _ms(step.latency.p99),
                _ms(step.latency.max),
                _cpu(step.server_cpu),
                _cpu(step.generator_cpu),
                _cpu(step.generator_core_busy) + (" ⚠" if step.near_ceiling else ""),
                _cpu(step.others_cpu),
                "yes" if not why else f"no: {why}",
            )
        )
    return _table(header, rows)


def _moderate(run: BenchRun) -> str:
    return notes.MODERATE + "\n" + _moderate_table(run)


def _moderate_table(run: BenchRun) -> str:
    def lat(attr: str, field: str) -> Callable[[ServerRun], float | None]:
        def pick(server: ServerRun) -> float | None:
            step = server.moderate
            return None if step is None else float(getattr(getattr(step, attr), field))

        return pick

    def cpu(server: ServerRun) -> float | None:
        return server.moderate.server_cpu if server.moderate else None

    def others(server: ServerRun) -> float | None:
        return server.moderate.others_cpu if server.moderate else None

    rows = [
        _three("delivery p50 ms", lat("latency", "p50"), run, "ms"),
        _three("delivery p95 ms", lat("latency", "p95"), run, "ms"),
        _three("delivery p99 ms", lat("latency", "p99"), run, "ms"),
        _three("delivery max ms", lat("latency", "max"), run, "ms"),
        _three("ack round trip p50 ms", lat("ack_latency", "p50"), run, "ms"),
        _three("ack round trip p99 ms", lat("ack_latency", "p99"), run, "ms"),
        _three("server cpu", cpu, run, "%"),
        _three("other processes' cpu", others, run, "%"),
    ]
    return _table(_HEAD, rows)


def _idle(run: BenchRun) -> str:
    return notes.IDLE + "\n" + _idle_table(run)


def _idle_table(run: BenchRun) -> str:
    def idle(get: Callable[[scenarios.Idle], float | None]) -> Callable[[ServerRun], float | None]:
        return lambda server: None if server.idle is None else get(server.idle)

    def loaded(field: str) -> Callable[[scenarios.Idle], float | None]:
        return lambda i: None if i.loaded is None else float(getattr(i.loaded.latency, field))

    rows = [
        _three("connections open", idle(lambda i: i.ramp.connected), run, ",.0f"),
        _three("ramp seconds", idle(lambda i: i.ramp.seconds), run, ".1f"),
        _three("RSS before, MiB", idle(lambda i: i.rss_before_kib / 1024), run, ".1f"),
        _three("RSS with the connections, MiB", idle(lambda i: i.rss_after_kib / 1024), run, ".1f"),
        _three("KiB per connection", idle(lambda i: i.per_connection_kib), run, ".1f"),
        _three("5,000 deliveries/s: p50 ms", idle(loaded("p50")), run, "ms"),
        _three("5,000 deliveries/s: p99 ms", idle(loaded("p99")), run, "ms"),
        _three(
            "5,000 deliveries/s: server cpu",
            idle(lambda i: i.loaded.server_cpu if i.loaded else None),
            run,
            "%",
        ),
    ]
    return _table(_HEAD, rows)


def _hook(hook: Hook) -> str:
    text = f"## {hook.title}\n\n"
    if hook.output is None:
        return text + f"Not measured yet: `python -m {hook.module}` does not exist in this checkout.\n"
    status = "" if hook.status == 0 else f" (exit status {hook.status})"
    return text + (
        f"`python -m {hook.module}`, run unchanged by the bench in {hook.seconds:.0f}s{status}; "
        f"its own output:\n\n```\n{hook.output}\n```\n"
    )


def _calibration(steps: Sequence[StepResult]) -> str:
    if not steps:
        return ""
    absorbed = max(s.deliveries_per_s for s in steps if s.loss == 0) if any(s.loss == 0 for s in steps) else 0
    clean = [s for s in steps if s.latency.p99 <= 10 and not s.near_ceiling]
    best_clean = max((s.deliveries_per_s for s in clean), default=0.0)
    header: tuple[str, ...] = ("offered/s", "absorbed/s", "p50 ms", "p99 ms", "generator cpu")
    header += ("generator's CPU busy",)
    header += ("µs per delivery", "firehose cpu", "others")
    rows = [
        (
            _num(s.offered_deliveries_per_s),
            _num(s.deliveries_per_s),
            _ms(s.latency.p50),
            _ms(s.latency.p99),
            _cpu(s.generator_cpu),
            _cpu(s.generator_core_busy) + (" ⚠" if s.near_ceiling else ""),
            f"{s.generator_us_per_delivery:.1f}",
            _cpu(s.server_cpu),
            _cpu(s.others_cpu),
        )
        for s in steps
    ]
    clean_text = (
        f"up to **{best_clean:,.0f} deliveries/s**"
        if best_clean
        else "at **none** of the rates tried in this run (see the generator's CPU: other work shared it)"
    )
    return notes.CALIBRATION.format(absorbed=absorbed, clean=clean_text) + "\n" + _table(header, rows)


def _profiles(run: BenchRun) -> str:
    text = notes.PROFILE
    for server in (run.baseline, run.chatio):
        text += f"\n### {server.kind.name}\n\n"
        if server.profile is None:
            text += "Not profiled in this run.\n"
        elif isinstance(server.profile, str):
            text += f"Not profiled: {server.profile}.\n"
        else:
            text += _profile_tables(server.profile)
    return text


def _profile_tables(found: Profile) -> str:
    share = [(name, f"{part:.0%}") for name, part in found.by_package]
    tops = [(f"`{name}`", f"{part:.0%}") for name, part in found.top_self]
    inclusive = [(f"`{name}`", f"{part:.0%}") for name, part in found.top_inclusive]
    return (
        f"{found.samples:,} samples. Where the CPU was (the innermost Python frame's package; C code counts "
        "for its Python caller):\n\n"
        + _table(("package", "share"), share)
        + "\nFunctions by own time:\n\n"
        + _table(("function", "own"), tops)
        + "\nFunctions by time including callees:\n\n"
        + _table(("function", "total"), inclusive)
    )
