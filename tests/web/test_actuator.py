"""Spring Boot Actuator's paths (seeds 000, 001, 004 scrape them) and a JSON 404 for every unknown path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from chatio.config import Settings
from chatio.keys import HEALTH
from chatio.metrics import CONTENT_TYPE
from tests.harness import RunningServer, clients, serving


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serving(Settings(pod_name="test")) as running:
        yield running


async def get(http: aiohttp.ClientSession, url: str, method: str = "GET") -> tuple[int, str, Any]:
    async with http.request(method, url) as response:
        kind = response.headers.get("Content-Type", "")
        body = await response.json() if kind.startswith("application/json") else await response.text()
        return response.status, kind, body


async def test_health_reports_each_component(server: RunningServer, http: aiohttp.ClientSession) -> None:
    status, kind, body = await get(http, f"{server.url}/actuator/health")
    assert (status, kind) == (200, "application/json; charset=utf-8")
    assert body["status"] == "UP" and body["components"]["store"]["status"] == "UP"
    assert body["components"]["store"]["details"]["latencyMs"] >= 0

    async def broken() -> None:
        raise ConnectionError("10.0.0.7:6379 refused")

    server.app[HEALTH].add_check("broken", broken)  # a fault, injected
    status, _, body = await get(http, f"{server.url}/actuator/health")
    assert status == 503 and body["status"] == "DOWN"
    assert body["components"]["broken"] == {
        "status": "DOWN",
        "details": {
            "latencyMs": body["components"]["broken"]["details"]["latencyMs"],
            "error": "ConnectionError",
        },
    }
    server.app[HEALTH].draining = True
    status, _, body = await get(http, f"{server.url}/actuator/health")
    assert status == 503 and body["status"] == "OUT_OF_SERVICE"


async def test_prometheus_and_metrics(server: RunningServer, http: aiohttp.ClientSession) -> None:
    async with clients(server.url, "alice", "bob") as (alice, _bob):
        await alice.join("r")
        await alice.call("send_message", {"room": "r", "text": "hi"})
        status, kind, text = await get(http, f"{server.url}/actuator/prometheus")
        assert status == 200 and kind == CONTENT_TYPE and kind.startswith("text/plain")
        assert "chat_connections_active 2.0" in text
        _, _, listing = await get(http, f"{server.url}/actuator/metrics")
        assert {"chat.connections.active", "chat.events", "chat.event.duration.seconds"} <= set(
            listing["names"]
        )
        _, _, active = await get(http, f"{server.url}/actuator/metrics/chat.connections.active")
        assert active == {
            "name": "chat.connections.active",
            "description": "Socket.IO connections open on this process.",
            "baseUnit": None,
            "measurements": [{"statistic": "VALUE", "value": 2.0}],
            "availableTags": [],
        }
    _, _, events = await get(http, f"{server.url}/actuator/metrics/chat.events?tag=event:send_message")
    assert events["measurements"] == [{"statistic": "COUNT", "value": 1.0}]
    assert {"tag": "outcome", "values": ["ok"]} in events["availableTags"]
    _, _, timing = await get(http, f"{server.url}/actuator/metrics/chat_event_duration_seconds")
    assert [m["statistic"] for m in timing["measurements"]] == ["COUNT", "TOTAL_TIME"]
    assert timing["baseUnit"] == "seconds" and timing["measurements"][0]["value"] == 2.0
    status, _, missing = await get(http, f"{server.url}/actuator/metrics/no.such.metric")
    assert status == 404 and missing["error"]["code"] == "not_found"
    status, _, missing = await get(http, f"{server.url}/actuator/metrics/chat.events?tag=event:nope")
    assert status == 404
    status, _, bad = await get(http, f"{server.url}/actuator/metrics/chat.events?tag=nocolon")
    assert status == 400 and bad["error"]["field"] == "tag"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/actuator/nothing"),
        ("GET", "/nothing-here"),
        ("GET", "/deep/er/path.js"),
        ("POST", "/"),
        ("DELETE", "/app.js"),
        ("GET", "/api/chat/nothing"),
        ("GET", "/%2e%2e/pyproject.toml"),
    ],
)
async def test_unknown_paths_answer_json_404(
    server: RunningServer, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    status, kind, body = await get(http, f"{server.url}{path}", method)
    assert (status, kind) == (404, "application/json; charset=utf-8"), body
    assert body["error"]["code"] == "not_found"


async def test_the_page_and_its_files_are_still_served(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    for path, kind in [("/", "text/html"), ("/js/main.js", "javascript"), ("/index.html", "text/html")]:
        async with http.get(f"{server.url}{path}") as response:
            assert response.status == 200 and kind in response.headers["Content-Type"], path
