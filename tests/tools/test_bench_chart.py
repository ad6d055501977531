"""tools/bench/chart.py draws the fan-out ladders of a bench run as a well-formed SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace
from typing import Any

from tools.bench.chart import fanout_chart


def ladder(name: str, holds: list[tuple[float, float, float, str]]) -> Any:
    steps = [
        SimpleNamespace(offered_deliveries_per_s=rate, latency=SimpleNamespace(p99=p99), server_cpu=cpu)
        for rate, p99, cpu, _why in holds
    ]
    verdicts = [why for *_rest, why in holds]
    return SimpleNamespace(
        kind=SimpleNamespace(name=name), fanout=SimpleNamespace(steps=steps, verdicts=verdicts)
    )


def test_the_chart_shows_each_ladder_in_both_panels() -> None:
    run = SimpleNamespace(
        servers=(
            ladder("chatio", [(2_500, 1.0, 0.05, ""), (80_000, 40.0, 0.9, ""), (113_000, 300.0, 1.0, "p99")]),
            ladder("python-socketio", [(2_500, 3.0, 0.2, ""), (14_000, 500.0, 1.0, "p99")]),
            ladder("Node socket.io", [(2_500, 2.0, 0.1, ""), (40_000, 90.0, 0.95, "")]),
        )
    )
    svg = ET.fromstring(fanout_chart(run))  # type: ignore[arg-type]
    namespace = "{http://www.w3.org/2000/svg}"
    assert len(svg.findall(f"{namespace}polyline")) == 6  # latency and CPU, per server
    circles = svg.findall(f"{namespace}circle")
    assert len(circles) == 2 * 7
    assert sum(circle.get("fill") == "white" for circle in circles) == 2 * 2  # the holds that missed
    labels = {text.text for text in svg.findall(f"{namespace}text")}
    assert {"chatio", "python-socketio", "Node socket.io", "100k"} <= labels
