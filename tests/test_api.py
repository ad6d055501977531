"""REST under /api/chat: JSON in, JSON out, errors with a code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.harness import RunningServer, clients, serving


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serving() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kwargs) as response:
        return response.status, await response.json()


async def test_users(server: RunningServer, http: aiohttp.ClientSession) -> None:
    body = {"username": "testuser", "email": "test@example.com", "displayName": "Test User"}
    status, user = await call(http, "POST", f"{server.url}/api/chat/users", json=body)
    assert status == 201
    assert (user["username"], user["displayName"], user["email"]) == (
        "testuser",
        "Test User",
        "test@example.com",
    )
    status, fetched = await call(http, "GET", f"{server.url}/api/chat/users/{user['id']}")
    assert status == 200 and fetched == user
    status, again = await call(http, "POST", f"{server.url}/api/chat/users", json=body)
    assert status == 409 and again["error"]["code"] == "conflict"
    status, missing = await call(http, "GET", f"{server.url}/api/chat/users/nope")
    assert status == 404 and missing["error"]["code"] == "not_found"


async def test_user_status_follows_the_socket(server: RunningServer, http: aiohttp.ClientSession) -> None:
    async with clients(server.url, "alice") as (alice,):
        session = await alice.expect("session")
        _, user = await call(http, "GET", f"{server.url}/api/chat/users/{session['user_id']}")
        assert user["status"] == "online" and user["guest"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": 5}, "username"),
        ({"username": "ok", "email": "not-an-email"}, "email"),
        ({"username": "ok", "admin": True}, "admin"),
        ({"username": {"$gt": ""}}, "username"),
        ([1, 2], None),
    ],
)
async def test_bad_user_bodies(
    server: RunningServer, http: aiohttp.ClientSession, body: Any, field: str
) -> None:
    status, error = await call(http, "POST", f"{server.url}/api/chat/users", json=body)
    assert status == 400 and error["error"]["code"] == "invalid_payload"
    assert error["error"].get("field") == field


async def test_not_json(server: RunningServer, http: aiohttp.ClientSession) -> None:
    status, error = await call(http, "POST", f"{server.url}/api/chat/rooms", data=b"{nope")
    assert status == 400 and error["error"]["field"] == "body"


async def test_rooms(server: RunningServer, http: aiohttp.ClientSession) -> None:
    for name in ["테스트방", "b-room", "a-room"]:
        status, room = await call(http, "POST", f"{server.url}/api/chat/rooms", json={"name": name})
        assert status == 201 and room["public"] is True
    await call(http, "POST", f"{server.url}/api/chat/rooms", json={"name": "secret", "public": False})
    status, conflict = await call(http, "POST", f"{server.url}/api/chat/rooms", json={"name": "a-room"})
    assert status == 409 and conflict["error"]["field"] == "name"
    status, listing = await call(http, "GET", f"{server.url}/api/chat/rooms/public?limit=2")
    assert [room["id"] for room in listing["rooms"]] == ["a-room", "b-room"] and listing["next"] == "b-room"
    _, rest = await call(http, "GET", f"{server.url}/api/chat/rooms/public?limit=2&after=b-room")
    assert [room["id"] for room in rest["rooms"]] == ["테스트방"] and rest["next"] is None
    status, bad = await call(http, "GET", f"{server.url}/api/chat/rooms/public?limit=0")
    assert status == 400 and bad["error"]["field"] == "limit"


async def test_message_pages(server: RunningServer, http: aiohttp.ClientSession) -> None:
    async with clients(server.url, "alice") as (alice,):
        await alice.join("r")
        for i in range(5):
            await alice.call("send_message", {"room": "r", "text": f"m{i}"})
    url = f"{server.url}/api/chat/rooms/r/messages"
    _, page = await call(http, "GET", f"{url}?limit=2")
    assert [m["seq"] for m in page["messages"]] == [4, 5] and page["has_more"]
    _, older = await call(http, "GET", f"{url}?before=4&limit=2")
    assert [m["seq"] for m in older["messages"]] == [2, 3]
    _, newer = await call(http, "GET", f"{url}?after=3")
    assert [m["text"] for m in newer["messages"]] == ["m3", "m4"]
    status, bad = await call(http, "GET", f"{url}?before=abc")
    assert status == 400 and bad["error"]["field"] == "before"
    status, capped = await call(http, "GET", f"{url}?limit=100000")
    assert status == 400 and capped["error"]["field"] == "limit"
    status, unknown = await call(http, "GET", f"{url}?sort=desc")
    assert status == 400 and unknown["error"]["field"] == "sort"
    status, missing = await call(http, "GET", f"{server.url}/api/chat/rooms/none/messages")
    assert status == 404 and missing["error"]["code"] == "room_not_found"


async def test_stats(server: RunningServer, http: aiohttp.ClientSession) -> None:
    async with clients(server.url, "alice", "bob") as (alice, bob):
        await alice.join("r")
        await bob.join("r")
        await alice.call("send_message", {"room": "r", "text": "hi"})
        status, stats = await call(http, "GET", f"{server.url}/api/chat/stats")
    assert status == 200
    assert stats["connections"] == 2 and stats["onlineUsers"] == 2 and stats["activeRooms"] == 1
    assert (stats["users"], stats["rooms"], stats["messages"]) == (2, 1, 1)
    assert stats["pod"] == "test"


async def test_unknown_api_paths_are_json(server: RunningServer, http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "GET", f"{server.url}/api/chat/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_health_and_page(server: RunningServer, http: aiohttp.ClientSession) -> None:
    assert (await call(http, "GET", f"{server.url}/healthz")) == (200, {"status": "ok"})
    assert (await call(http, "GET", f"{server.url}/readyz")) == (200, {"status": "ready"})
    async with http.get(f"{server.url}/") as response:
        assert response.status == 200 and "text/html" in response.headers["Content-Type"]
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    async with http.get(f"{server.url}/../pyproject.toml") as response:
        assert response.status == 404
