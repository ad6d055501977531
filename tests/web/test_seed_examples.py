"""Seed 000's REST examples, exactly as its README writes them, against the embedded defaults (guests
allowed), and what a production configuration (accounts only) answers instead."""

from __future__ import annotations

import aiohttp

from chatio.config import Settings
from tests.accounts_helpers import bearer, call, refusal, signed_up
from tests.harness import connect, serving

SEED_USER = {"username": "testuser", "email": "test@example.com", "displayName": "Test User"}
SEED_ROOM = {"name": "테스트방", "ownerId": "testuser"}


async def test_seed_curl_block_as_written(http: aiohttp.ClientSession) -> None:
    async with serving(Settings(pod_name="test")) as server:
        status, user = await call(http, "POST", f"{server.url}/api/chat/users", json=SEED_USER)
        assert status == 201, user
        assert (user["username"], user["displayName"], user["email"], user["guest"]) == (
            "testuser",
            "Test User",
            "test@example.com",
            True,
        )
        status, room = await call(http, "POST", f"{server.url}/api/chat/rooms", json=SEED_ROOM)
        assert status == 201, room
        assert (room["id"], room["name"], room["ownerId"]) == ("테스트방", "테스트방", user["id"])
        # The profile signs in as a guest does: by name, over Socket.IO or POST /api/chat/auth/guest.
        client = await connect(server.url, "testuser")
        try:
            session = await client.expect("session")
            assert (session["userId"], session["guest"]) == (user["id"], True)
        finally:
            await client.sio.disconnect()
        status, grant = await call(
            http, "POST", f"{server.url}/api/chat/auth/guest", json={"username": "testuser"}
        )
        assert status == 200 and grant["user"]["id"] == user["id"]
        # Found by username as well as by id.
        for name in ("testuser", user["id"]):
            status, found = await call(
                http, "GET", f"{server.url}/api/chat/users/{name}", headers=bearer(grant["accessToken"])
            )
            assert status == 200 and found["id"] == user["id"], found
        status, taken = await call(http, "POST", f"{server.url}/api/chat/users", json=SEED_USER)
        assert status == 409 and taken["error"]["field"] == "username"


async def test_owner_id_names_the_caller_only(http: aiohttp.ClientSession) -> None:
    async with serving(Settings(pod_name="test")) as server:
        rooms = f"{server.url}/api/chat/rooms"
        alice = await signed_up(http, server.url, "alice")
        await signed_up(http, server.url, "bob")
        mine = bearer(alice["accessToken"])
        for owner in ("alice", alice["user"]["id"]):
            status, room = await call(
                http, "POST", rooms, json={"name": f"r-{owner}", "ownerId": owner}, headers=mine
            )
            assert status == 201 and room["ownerId"] == alice["user"]["id"], room
        status, refused = await call(http, "POST", rooms, json={"name": "x", "ownerId": "bob"}, headers=mine)
        assert status == 403 and refused["error"]["field"] == "ownerId"
        # Without a token a registered user's name proves nothing.
        status, refused = await call(http, "POST", rooms, json={"name": "y", "ownerId": "bob"})
        assert status == 401 and refused["error"]["field"] == "ownerId"
        status, refused = await call(http, "POST", rooms, json={"name": "z"})
        assert status == 401 and "Bearer" in refused["error"]["message"]


async def test_accounts_only_server_names_what_is_needed(http: aiohttp.ClientSession) -> None:
    async with serving(Settings(pod_name="test", allow_guests=False)) as server:
        status, error = await call(http, "POST", f"{server.url}/api/chat/users", json=SEED_USER)
        assert status == 400 and error["error"]["field"] == "password"
        assert "does not allow guests" in error["error"]["message"]
        status, error = await call(http, "POST", f"{server.url}/api/chat/rooms", json=SEED_ROOM)
        assert status == 401 and "Bearer" in error["error"]["message"]
        assert (await refusal(server.url, {"username": "testuser"}))["data"]["code"] == "unauthorized"
