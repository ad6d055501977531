"""REST under /api/chat: JSON in, JSON out, errors with a code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from chatio.config import Settings
from tests.accounts_helpers import PASSWORD, bearer, fast_passwords, signed_up
from tests.harness import RunningServer, clients, serving


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serving(Settings(pod_name="test"), passwords=fast_passwords()) as running:
        yield running


async def call(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kwargs) as response:
        return response.status, await response.json()


@pytest.fixture
async def token(server: RunningServer, http: aiohttp.ClientSession) -> str:
    """An access token of the registered user ``reader``."""
    grant = await signed_up(http, server.url, "reader")
    access: str = grant["accessToken"]
    return access


async def test_users(server: RunningServer, http: aiohttp.ClientSession) -> None:
    body = {
        "username": "testuser",
        "password": PASSWORD,
        "email": "test@example.com",
        "displayName": "Test User",
    }
    status, user = await call(http, "POST", f"{server.url}/api/chat/users", json=body)
    assert status == 201
    assert (user["username"], user["displayName"], user["email"]) == (
        "testuser",
        "Test User",
        "test@example.com",
    )
    login = {"username": "testuser", "password": PASSWORD}
    _, grant = await call(http, "POST", f"{server.url}/api/chat/auth/login", json=login)
    mine = bearer(grant["accessToken"])
    status, fetched = await call(http, "GET", f"{server.url}/api/chat/users/{user['id']}", headers=mine)
    assert status == 200 and fetched == user
    status, again = await call(http, "POST", f"{server.url}/api/chat/users", json=body)
    assert status == 409 and again["error"]["code"] == "conflict"
    status, missing = await call(http, "GET", f"{server.url}/api/chat/users/nope", headers=mine)
    assert status == 404 and missing["error"]["code"] == "not_found"


async def test_user_status_follows_the_socket(
    server: RunningServer, http: aiohttp.ClientSession, token: str
) -> None:
    async with clients(server.url, "alice") as (alice,):
        session = await alice.expect("session")
        url = f"{server.url}/api/chat/users/{session['userId']}"
        _, user = await call(http, "GET", url, headers=bearer(token))
        assert user["status"] == "online" and user["guest"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": 5, "password": PASSWORD}, "username"),
        ({"username": "ok", "password": PASSWORD, "email": "not-an-email"}, "email"),
        ({"username": "ok", "password": PASSWORD, "admin": True}, "admin"),
        ({"username": {"$gt": ""}, "password": PASSWORD}, "username"),
        ({"username": "ok", "password": "short"}, "password"),
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
    status, error = await call(http, "POST", f"{server.url}/api/chat/users", data=b"{nope")
    assert status == 400 and error["error"]["field"] == "body"


async def test_rooms(server: RunningServer, http: aiohttp.ClientSession, token: str) -> None:
    auth = bearer(token)
    rooms = f"{server.url}/api/chat/rooms"
    for name in ["테스트방", "b-room", "a-room"]:
        status, room = await call(http, "POST", rooms, json={"name": name}, headers=auth)
        assert status == 201 and room["public"] is True and room["ownerId"]
    await call(http, "POST", rooms, json={"name": "secret", "public": False}, headers=auth)
    status, conflict = await call(http, "POST", rooms, json={"name": "a-room"}, headers=auth)
    assert status == 409 and conflict["error"]["field"] == "name"
    status, listing = await call(http, "GET", f"{rooms}/public?limit=2", headers=auth)
    assert [room["id"] for room in listing["rooms"]] == ["a-room", "b-room"] and listing["next"] == "b-room"
    _, rest = await call(http, "GET", f"{rooms}/public?limit=2&after=b-room", headers=auth)
    assert [room["id"] for room in rest["rooms"]] == ["테스트방"] and rest["next"] is None
    status, bad = await call(http, "GET", f"{rooms}/public?limit=0", headers=auth)
    assert status == 400 and bad["error"]["field"] == "limit"


async def test_json_is_utf8_not_escaped(
    server: RunningServer, http: aiohttp.ClientSession, token: str
) -> None:
    body = {"name": "날씨방"}
    async with http.post(f"{server.url}/api/chat/rooms", json=body, headers=bearer(token)) as response:
        raw = await response.read()
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "날씨방".encode() in raw and b"\\u" not in raw


async def test_snake_case_fields_are_refused(server: RunningServer) -> None:
    async with clients(server.url, "alice") as (alice,):
        await alice.join("r")
        ack = await alice.call("send_message", {"room": "r", "text": "hi", "client_msg_id": "m1"})
        assert ack["error"]["code"] == "invalid_payload" and ack["error"]["field"] == "client_msg_id"
        ack = await alice.call("send_message", {"room": "r", "text": "hi", "clientMsgId": "m1"})
        assert set(ack["message"]) == {
            *("id", "room", "seq", "user", "userId", "displayName", "text", "ts", "clientMsgId"),
            *("replyTo", "replyCount", "editedAt", "deleted", "reactions", "change"),
        }


async def test_message_pages(server: RunningServer, http: aiohttp.ClientSession, token: str) -> None:
    async with clients(server.url, "alice") as (alice,):
        await alice.join("r")
        for i in range(5):
            await alice.call("send_message", {"room": "r", "text": f"m{i}"})
    url = f"{server.url}/api/chat/rooms/r/messages"
    http.headers.update(bearer(token))
    _, page = await call(http, "GET", f"{url}?limit=2")
    assert [m["seq"] for m in page["messages"]] == [4, 5] and page["hasMore"]
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
