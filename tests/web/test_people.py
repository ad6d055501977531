"""Seed 002's "list all clients": GET /api/chat/users (paginated, who is online, no one else's e-mail) and
GET /api/chat/rooms/{room}/members with each member's status."""

from __future__ import annotations

import aiohttp

from chatio.config import Settings
from tests.accounts_helpers import bearer, call, fast_passwords, signed_up
from tests.harness import clients, serving


async def test_users_pages_and_who_is_online() -> None:
    async with (
        serving(Settings(pod_name="test"), passwords=fast_passwords()) as server,
        aiohttp.ClientSession() as http,
    ):
        grant = await signed_up(http, server.url, "reader")
        mine = bearer(grant["accessToken"])
        await call(
            http, "POST", f"{server.url}/api/chat/users", json={"username": "quiet", "email": "q@x.org"}
        )
        users = f"{server.url}/api/chat/users"
        async with clients(server.url, "alice", "bob") as (alice, _bob):
            await alice.call("user_status", {"status": "busy"})
            status, page = await call(http, "GET", users, headers=mine)
            assert status == 200 and page["next"] is None
            seen = {u["username"]: u for u in page["users"]}
            assert [u["username"] for u in page["users"]] == ["alice", "bob", "quiet", "reader"]
            assert (seen["alice"]["status"], seen["quiet"]["status"]) == ("busy", "offline")
            assert seen["quiet"]["email"] is None and "q@x.org" not in str(page)  # no one else's address
            _, first = await call(http, "GET", users, params={"limit": "2"}, headers=mine)
            assert [u["username"] for u in first["users"]] == ["alice", "bob"] and first["next"] == "bob"
            _, rest = await call(http, "GET", users, params={"limit": "2", "cursor": "bob"}, headers=mine)
            assert [u["username"] for u in rest["users"]] == ["quiet", "reader"]
            _, online = await call(http, "GET", users, params={"online": "true"}, headers=mine)
            assert [u["username"] for u in online["users"]] == ["alice", "bob"]
            _, offline = await call(http, "GET", users, params={"online": "false", "q": "qu"}, headers=mine)
            assert [u["username"] for u in offline["users"]] == ["quiet"]
            status, bad = await call(http, "GET", users, params={"online": "maybe"}, headers=mine)
            assert status == 400 and bad["error"]["field"] == "online"
            assert (await call(http, "GET", users))[0] == 401


async def test_room_members_with_their_status() -> None:
    async with (
        serving(Settings(pod_name="test"), passwords=fast_passwords()) as server,
        aiohttp.ClientSession() as http,
    ):
        mine = bearer((await signed_up(http, server.url, "reader"))["accessToken"])
        async with clients(server.url, "alice", "bob") as (alice, bob):
            await alice.join("lobby")
            await bob.join("lobby")
            await bob.call("user_status", {"status": "away"})
            status, body = await call(http, "GET", f"{server.url}/api/chat/rooms/lobby/members", headers=mine)
            assert status == 200
            assert body == {
                "room": "lobby",
                "members": [
                    {"user": "alice", "displayName": "alice", "status": "online"},
                    {"user": "bob", "displayName": "bob", "status": "away"},
                ],
            }
        status, _ = await call(http, "GET", f"{server.url}/api/chat/rooms/nowhere/members", headers=mine)
        assert status == 404
