"""docs/performance-fanout.svg: the fan-out ladders of one bench run, drawn from its own holds.

Two panels share the x axis, offered deliveries/s (log scale, the ladder steps by about √2): p99
delivery latency in ms (log scale) on top, the measured server's CPU below. One polyline per server, one
dot per hold (hollow: the hold did not keep up). Plain SVG, no library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from tools.bench.report import BenchRun

CHART: Final = "performance-fanout.svg"
WIDTH, HEIGHT = 760, 520
LEFT, RIGHT, TOP = 70, 180, 30
PANEL = 200
GAP = 50
COLOURS: Final = {"chatio": "#1f77b4", "python-socketio": "#d62728", "Node socket.io": "#2ca02c"}


def fanout_chart(run: BenchRun) -> str:
    """The SVG text for ``run``'s fan-out ladders (an empty chart when none was measured)."""
    series = [
        (server.kind.name, server.fanout.steps, server.fanout.verdicts)
        for server in run.servers
        if server.fanout and server.fanout.steps
    ]
    steps = [step for _name, found, _verdicts in series for step in found]
    offered = [step.offered_deliveries_per_s for step in steps if step.offered_deliveries_per_s > 0]
    p99s = [max(step.latency.p99, 0.1) for step in steps]
    x_range = _log_range(offered or [1_000, 100_000])
    y_range = _log_range(p99s or [1, 100])
    cpus = [step.server_cpu or 0.0 for step in steps]
    cpu_top = max(1.0, math.ceil(max(cpus, default=1.0) * 4) / 4)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        *_axes(x_range, y_range, cpu_top),
    ]
    for row, (name, found, verdicts) in enumerate(series):
        colour = COLOURS.get(name, "#555")
        ordered = sorted(zip(found, verdicts, strict=True), key=lambda pair: pair[0].offered_deliveries_per_s)
        top = [(_x(s.offered_deliveries_per_s, x_range), _y_log(s.latency.p99, y_range)) for s, _v in ordered]
        low = [
            (_x(s.offered_deliveries_per_s, x_range), _y_cpu(s.server_cpu or 0.0, cpu_top))
            for s, _v in ordered
        ]
        for points in (top, low):
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
            for (x, y), (_step, why) in zip(points, ordered, strict=True):
                fill = colour if not why else "white"
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{fill}" stroke="{colour}"/>')
        legend_y = TOP + 20 + 20 * row
        parts.append(
            f'<line x1="{WIDTH - RIGHT + 20}" y1="{legend_y}" x2="{WIDTH - RIGHT + 40}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{WIDTH - RIGHT + 46}" y="{legend_y + 4}">{name}</text>'
        )
    parts.append(
        f'<text x="{WIDTH - RIGHT + 20}" y="{TOP + 20 + 20 * len(series) + 10}" fill="#555">'
        "hollow: did not keep up</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _log_range(values: Sequence[float]) -> tuple[float, float]:
    low, high = math.log10(min(values)), math.log10(max(values))
    return math.floor(low), max(math.ceil(high), math.floor(low) + 1)


def _x(value: float, span: tuple[float, float]) -> float:
    low, high = span
    share = (math.log10(max(value, 10**low)) - low) / (high - low)
    return LEFT + share * (WIDTH - LEFT - RIGHT)


def _y_log(value: float, span: tuple[float, float]) -> float:
    low, high = span
    share = (math.log10(max(value, 10**low)) - low) / (high - low)
    return TOP + PANEL - share * PANEL


def _y_cpu(value: float, top: float) -> float:
    base = TOP + PANEL + GAP
    return base + PANEL - min(value, top) / top * PANEL


def _axes(x_range: tuple[float, float], y_range: tuple[float, float], cpu_top: float) -> list[str]:
    right = WIDTH - RIGHT
    parts = []
    cpu_base = TOP + PANEL + GAP
    for base, title in ((TOP, "p99 delivery latency, ms (log)"), (cpu_base, "server CPU, % of a core")):
        parts.append(
            f'<rect x="{LEFT}" y="{base}" width="{right - LEFT}" height="{PANEL}" fill="none" stroke="#999"/>'
            f'<text x="{LEFT}" y="{base - 8}" font-weight="bold">{title}</text>'
        )
    for exponent in range(int(x_range[0]), int(x_range[1]) + 1):
        for factor in (1, 2, 5):
            value = factor * 10**exponent
            if not 10 ** x_range[0] <= value <= 10 ** x_range[1]:
                continue
            x = _x(value, x_range)
            parts.append(
                f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{cpu_base + PANEL}" stroke="#eee"/>'
            )
            parts.append(
                f'<text x="{x:.1f}" y="{cpu_base + PANEL + 16}" text-anchor="middle">{_short(value)}</text>'
            )
    middle = (LEFT + right) / 2
    parts.append(
        f'<text x="{middle}" y="{HEIGHT - 8}" text-anchor="middle">offered deliveries/s (log)</text>'
    )
    for exponent in range(int(y_range[0]), int(y_range[1]) + 1):
        y = _y_log(10**exponent, y_range)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_short(10**exponent)}</text>')
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        value = share * cpu_top
        y = _y_cpu(value, cpu_top)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:.0%}</text>')
    return parts


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"
