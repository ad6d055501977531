"""chatio-loadtest against a real server: it connects, converses, counts every delivery and reports it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.procs import REPO_ROOT, describe_run, run_bounded, start_server


def test_loadtest_counts_every_delivery(tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    with start_server({"CHATIO_RATE_LIMIT_PER_MINUTE": "100000"}) as server:
        result = run_bounded(
            [
                sys.executable,
                "-m",
                "chatio.loadtest",
                "--target-url",
                server.url,
                "--conn-count",
                "40",
                "--batch-size",
                "20",
                "--batch-delay-ms",
                "50",
                "--room-size",
                "10",
                "--senders",
                "40",
                "--rate",
                "40",
                "--duration",
                "2",
                "--json-out",
                str(result_file),
            ],
            cwd=REPO_ROOT,
            timeout=60,
        )
        assert result.returncode == 0, describe_run(result, server)
    assert "=== summary ===" in result.stdout and "deliveries/s" in result.stdout
    document = json.loads(result_file.read_text())
    assert document["ramp"] == {"connected": 40, "failed": 0, "seconds": document["ramp"]["seconds"]}
    (step,) = document["steps"]
    assert step["loss"] == 0
    # 40 messages/s for 2 s into rooms of 10: each message reaches the 9 other members.
    assert step["delivered"] == step["acked"] * 9 and step["acked"] >= 60
    # Sampled receivers check seq order (one process: a reordering would be rare, never most of them).
    assert 0 <= step["late"] < step["latency"]["count"] and "out of seq order" in result.stdout


def test_loadtest_drives_plain_websocket_clients_as_seed_001_configures_it(tmp_path: Path) -> None:
    """TARGET_URL=ws://.../ws/chat with seed 001's variables: everyone in ROOM_ID, ENTER and TALK frames."""
    result_file = tmp_path / "result.json"
    with start_server({"CHATIO_RATE_LIMIT_PER_MINUTE": "100000"}) as server:
        env = {
            **os.environ,
            "TARGET_URL": server.url.replace("http://", "ws://") + "/ws/chat",
            "CONN_COUNT": "20",
            "BATCH_SIZE": "10",
            "BATCH_DELAY_MS": "50",
            "ROOM_ID": "load-test-room",
            "MSG_COUNT": "3",
            "MSG_INTERVAL_SEC": "0.5",
            "JSON_OUT": str(result_file),
        }
        result = run_bounded([sys.executable, "-m", "chatio.loadtest"], cwd=REPO_ROOT, timeout=60, env=env)
        assert result.returncode == 0, describe_run(result, server)
    assert "20 in 1 room(s)" in result.stdout and "not yet delivered at the cut-off 0" in result.stdout
    (step,) = json.loads(result_file.read_text())["steps"]
    # 20 senders x 3 messages into one room of 20: each reaches the 19 others; every TALK answered.
    assert (step["sent"], step["acked"], step["delivered"], step["loss"]) == (60, 60, 60 * 19, 0)


def test_a_wrong_path_gets_a_hint() -> None:
    with start_server() as server:
        url = server.url.replace("http://", "ws://") + "/chat"
        result = run_bounded(
            [
                sys.executable,
                "-m",
                "chatio.loadtest",
                "--target-url",
                url,
                "--conn-count",
                "1",
                "--msg-count",
                "0",
            ],
            cwd=REPO_ROOT,
            timeout=60,
        )
    assert result.returncode == 1
    assert "404" in result.stdout and "/ws/chat" in result.stdout and "/socket.io/" in result.stdout


def test_the_memory_bench_shows_where_an_idle_connection_goes() -> None:
    """``python -m tools.bench.memory`` (a ``make bench`` section) runs and breaks the heap down."""
    result = run_bounded(
        [sys.executable, "-m", "tools.bench.memory", "--clients", "120", "--room-size", "40"],
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "120 idle WebSocket connections in rooms of 40 (0 failed to connect)" in result.stdout
    assert "traced Python heap per connection:" in result.stdout
    assert "by package (bytes per connection):" in result.stdout
    assert "largest allocation sites" in result.stdout
