"""``python -m chatio`` as a real process: metrics move, SIGTERM drains and exits within its bound."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time

import aiohttp

from tests.harness import clients
from tests.procs import start_server


def sample(metrics: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", metrics, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


async def test_metrics_move_as_messages_flow() -> None:
    with start_server({"CHATIO_POD_NAME": "metrics-pod"}) as server:
        async with aiohttp.ClientSession() as http, clients(server.url, "alice", "bob", "carol") as people:
            for person in people:
                await person.join("lobby")
            for i in range(3):
                assert (await people[0].call("send_message", {"room": "lobby", "text": str(i)}))["ok"]
            await people[0].call("nope", {})
            async with http.get(f"{server.url}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                metrics = await response.text()
        assert sample(metrics, "chat_connections_active") == 3
        assert sample(metrics, "chat_rooms_active") == 1
        assert sample(metrics, "chat_messages_published_total") == 3
        assert sample(metrics, "chat_messages_broadcast_total") == 6
        assert sample(metrics, 'chat_event_duration_seconds_count{event="send_message"}') == 3
        assert sample(metrics, 'chat_events_total{event="unknown",outcome="unknown_event"}') == 1
        # tune_for_serving's own collection at start is the first observed pause.
        assert sample(metrics, 'chat_gc_pause_seconds_count{generation="2"}') >= 1


async def test_sigterm_drains_tells_clients_and_exits_in_time() -> None:
    settings = {"CHATIO_DRAIN_DELAY_SECONDS": "1", "CHATIO_SHUTDOWN_TIMEOUT_SECONDS": "5"}
    with start_server(settings) as server:
        async with aiohttp.ClientSession() as http, clients(server.url, "alice", "bob") as (alice, bob):
            await alice.join("r")
            await bob.join("r")
            started = time.monotonic()
            os.kill(server.pid, signal.SIGTERM)
            await asyncio.sleep(0.3)
            async with http.get(f"{server.url}/readyz") as response:
                assert response.status == 503 and (await response.json())["status"] == "draining"
            # While draining, established clients keep chatting.
            assert (await alice.call("send_message", {"room": "r", "text": "still here"}))["ok"]
            assert (await bob.expect("message"))["text"] == "still here"
            notice = await bob.expect("server_shutdown", timeout=5)
            assert notice["reconnectAfterMs"] > 0
            exit_status = await asyncio.to_thread(server.proc.wait, 10)
            elapsed = time.monotonic() - started
        assert exit_status == 0, server.output()
        assert 1.0 <= elapsed < 6.0
        assert not alice.sio.connected and not bob.sio.connected
        assert "stopped" in server.output()
