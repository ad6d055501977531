"""GET /api/chat/config (the limits the page reads, not hard-codes) and GET /api/chat/rooms/mine."""

from __future__ import annotations

import aiohttp

from chatio.config import Settings
from tests.accounts_helpers import bearer, call, fast_passwords, signed_up
from tests.harness import connect, serving

SETTINGS = Settings(
    pod_name="test", message_max_length=321, history_page_size=7, allow_guests=False, retention_days=30
)


async def test_config_publishes_the_servers_limits_without_a_token(http: aiohttp.ClientSession) -> None:
    async with serving(SETTINGS, passwords=fast_passwords()) as server:
        status, config = await call(http, "GET", f"{server.url}/api/chat/config")
    assert status == 200
    assert config["messageMaxLength"] == 321
    assert config["historyPageSize"] == 7
    assert config["allowGuests"] is False
    assert config["passwordMinLength"] == 8
    assert config["retentionDays"] == 30
    assert "👍" in config["reactions"]
    assert set(config) >= {"historyMaxPage", "catchupMax", "usernameMaxLength", "roomMaxLength"}


async def test_published_limits_are_the_ones_enforced(http: aiohttp.ClientSession) -> None:
    async with serving(SETTINGS, passwords=fast_passwords()) as server:
        config = (await call(http, "GET", f"{server.url}/api/chat/config"))[1]
        longest_name = "n" * config["usernameMaxLength"]
        grant = await signed_up(http, server.url, longest_name)
        status, _ = await call(
            http,
            "POST",
            f"{server.url}/api/chat/users",
            json={"username": longest_name + "n", "password": "x" * config["passwordMinLength"]},
        )
        assert status == 400
        client = await connect(server.url, auth={"token": grant["accessToken"]})
        try:
            room = "r" * config["roomMaxLength"]
            assert (await client.call("join_room", {"room": room}))["ok"]
            assert not (await client.call("join_room", {"room": room + "r"}))["ok"]
            limit = config["messageMaxLength"]
            assert (await client.call("send_message", {"room": room, "text": "é" * limit}))["ok"]
            refused = await client.call("send_message", {"room": room, "text": "é" * (limit + 1)})
            assert refused["error"]["field"] == "text"
        finally:
            await client.sio.disconnect()


async def test_rooms_mine_lists_the_callers_rooms_with_their_role(http: aiohttp.ClientSession) -> None:
    async with serving(SETTINGS, passwords=fast_passwords()) as server:
        owner = await signed_up(http, server.url, "owner")
        guest = await signed_up(http, server.url, "invitee")
        alice = await connect(server.url, auth={"token": owner["accessToken"]})
        bob = await connect(server.url, auth={"token": guest["accessToken"]})
        try:
            assert (await alice.call("create_room", {"room": "secret", "public": False}))["ok"]
            assert (await alice.call("create_room", {"room": "open"}))["ok"]
            assert (await alice.call("invite", {"room": "secret", "user": "invitee"}))["ok"]
            assert (await alice.call("open_dm", {"user": "invitee"}))["ok"]
            url = f"{server.url}/api/chat/rooms/mine"
            status, mine = await call(http, "GET", url, headers=bearer(owner["accessToken"]))
            assert status == 200
            assert [(r["id"], r["public"], r["role"]) for r in mine["rooms"]] == [
                ("open", True, "owner"),
                ("secret", False, "owner"),
            ]
            assert (await call(http, "GET", url, headers=bearer(guest["accessToken"])))[1] == {"rooms": []}
            assert (await bob.call("accept_invite", {"room": "secret"}))["ok"]
            rooms = (await call(http, "GET", url, headers=bearer(guest["accessToken"])))[1]["rooms"]
            assert [(r["id"], r["role"]) for r in rooms] == [("secret", "member")]
            assert (await call(http, "GET", url))[0] == 401
        finally:
            await alice.sio.disconnect()
            await bob.sio.disconnect()
