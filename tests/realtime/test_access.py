"""Private rooms, invitations and direct messages: nobody gets in, or reads, where they do not belong.

Every test runs twice: on the embedded stores, and with MongoDB behind the store, the accounts and the
room memberships (a real mongod, a database of its own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from chatio.config import Secret, Settings
from tests.accounts_helpers import bearer, call, fast_passwords, signed_up
from tests.harness import Client, RunningServer, connect, serving

Users = Callable[..., Awaitable[list[tuple[Client, str]]]]


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.mongo)])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    settings = Settings(pod_name="t", allow_guests=False, jwt_secret=Secret("r" * 40))
    if request.param == "mongo":
        uri, database = request.getfixturevalue("mongodb_uri"), request.getfixturevalue("mongodb_database")
        settings = Settings(
            pod_name="t",
            allow_guests=False,
            jwt_secret=Secret("r" * 40),
            mongodb_uri=Secret(uri),
            mongodb_database=database,
        )
    async with serving(settings, passwords=fast_passwords()) as running:
        yield running


@pytest.fixture
async def users(server: RunningServer, http: aiohttp.ClientSession) -> AsyncIterator[Users]:
    """``await users("alice", "bob")``: each registered, logged in and connected: ``[(client, token)]``."""
    connected: list[Client] = []

    async def make(*names: str) -> list[tuple[Client, str]]:
        made = []
        for name in names:
            token = (await signed_up(http, server.url, name))["accessToken"]
            client = await connect(server.url, auth={"token": token})
            connected.append(client)
            made.append((client, token))
        return made

    yield make
    for client in connected:
        await client.sio.disconnect()


async def messages(
    http: aiohttp.ClientSession, server: RunningServer, room: str, token: str
) -> tuple[int, Any]:
    return await call(http, "GET", f"{server.url}/api/chat/rooms/{room}/messages", headers=bearer(token))


async def test_a_private_room_admits_its_members_only(
    server: RunningServer, http: aiohttp.ClientSession, users: Users
) -> None:
    (alice, alice_token), (mallory, mallory_token) = await users("alice", "mallory")
    created = await alice.call("create_room", {"room": "secret", "public": False})
    assert created == {
        "ok": True,
        "room": {"id": "secret", "name": "secret", "public": False, "receipts": True, "retentionDays": None},
    }
    await alice.join("secret")
    assert (await alice.call("send_message", {"room": "secret", "text": "for members"}))["ok"]

    refused = await mallory.call("join_room", {"room": "secret"})
    assert refused["error"]["code"] == "forbidden" and refused["error"]["field"] == "room"
    assert (await mallory.call("history", {"room": "secret"}))["error"]["code"] == "not_in_room"
    assert (await mallory.call("send_message", {"room": "secret", "text": "x"}))["error"][
        "code"
    ] == "not_in_room"
    status, body = await messages(http, server, "secret", mallory_token)
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, page = await messages(http, server, "secret", alice_token)
    assert status == 200 and [m["text"] for m in page["messages"]] == ["for members"]
    status, _ = await call(
        http, "POST", f"{server.url}/api/chat/rooms", json={"name": "secret"}, headers=bearer(mallory_token)
    )
    assert status == 409


async def test_invitations_accepted_and_declined(
    server: RunningServer, http: aiohttp.ClientSession, users: Users
) -> None:
    (alice, _), (bob, bob_token), (carol, _) = await users("alice", "bob", "carol")
    await alice.call("create_room", {"room": "club", "public": False})
    await alice.join("club")
    await alice.call("send_message", {"room": "club", "text": "welcome"})

    assert await alice.call("invite", {"room": "club", "user": "bob"}) == {
        "ok": True,
        "room": "club",
        "user": "bob",
    }
    assert await bob.expect("invited") == {"room": "club", "by": "alice"}
    assert await alice.expect("user_invited") == {"room": "club", "user": "bob", "by": "alice"}
    _, pending = await call(http, "GET", f"{server.url}/api/chat/invitations", headers=bearer(bob_token))
    assert [(i["room"], i["by"]) for i in pending["invitations"]] == [("club", "alice")]
    assert (await alice.call("invite", {"room": "club", "user": "bob"}))["error"]["code"] == "conflict"

    joined = await bob.call("accept_invite", {"room": "club"})
    assert joined["ok"] and [m["text"] for m in joined["history"]] == ["welcome"]
    assert joined["role"] == "member"
    assert await alice.expect("user_joined") == {"room": "club", "user": "bob", "displayName": "bob"}
    assert (await messages(http, server, "club", bob_token))[0] == 200
    assert (await alice.call("invite", {"room": "club", "user": "bob"}))["error"]["code"] == "conflict"

    await alice.call("invite", {"room": "club", "user": "carol"})
    await carol.expect("invited")
    assert await carol.call("decline_invite", {"room": "club"}) == {"ok": True, "room": "club"}
    assert await alice.expect("invite_declined") == {"room": "club", "user": "carol"}
    assert (await carol.call("accept_invite", {"room": "club"}))["error"]["code"] == "not_found"
    assert (await carol.call("join_room", {"room": "club"}))["error"]["code"] == "forbidden"


async def test_the_owner_and_admins_invite_and_only_the_owner_names_admins(users: Users) -> None:
    (alice, _), (bob, _), (dave, _), (erin, _) = await users("alice", "bob", "dave", "erin")
    await alice.call("create_room", {"room": "club", "public": False})
    assert (await bob.call("invite", {"room": "club", "user": "dave"}))["error"]["code"] == "forbidden"
    assert (await alice.call("set_role", {"room": "club", "user": "bob", "role": "member"}))["ok"]
    assert (await bob.expect("role_changed"))["role"] == "member"
    assert (await bob.join("club"))["role"] == "member"
    assert (await bob.call("invite", {"room": "club", "user": "dave"}))["error"]["code"] == "forbidden"
    assert (await alice.call("set_role", {"room": "club", "user": "bob", "role": "admin"}))["ok"]
    named = {"room": "club", "user": "bob", "role": "admin", "by": "alice"}
    assert await bob.expect("role_changed") == named  # bob's client offers moderation at once
    assert (await bob.join("club"))["role"] == "admin"  # the join ack says where one stands
    assert (await alice.join("club"))["role"] == "owner"
    assert (await bob.call("invite", {"room": "club", "user": "dave"}))["ok"]
    refused = await bob.call("set_role", {"room": "club", "user": "erin", "role": "admin"})
    assert refused["error"]["code"] == "forbidden"
    owner = await bob.call("set_role", {"room": "club", "user": "alice", "role": "member"})
    assert owner["error"]["code"] == "forbidden"
    assert (await alice.call("invite", {"room": "club", "user": "nobody"}))["error"]["code"] == "not_found"
    assert (await alice.call("invite", {"room": "nowhere", "user": "erin"}))["error"][
        "code"
    ] == "room_not_found"
    assert (await dave.call("accept_invite", {"room": "club"}))["ok"]
    await erin.nothing("invited", wait=0.1)


async def test_direct_messages_belong_to_their_pair(
    server: RunningServer, http: aiohttp.ClientSession, users: Users
) -> None:
    (alice, alice_token), (bob, bob_token), (mallory, mallory_token) = await users("alice", "bob", "mallory")
    opened = await alice.call("open_dm", {"user": "bob"})
    room = opened["room"]["id"]
    assert (
        opened["ok"] and opened["user"] == "bob" and room.startswith("dm:") and not opened["room"]["public"]
    )
    assert await bob.expect("dm_opened") == {"room": room, "user": "alice"}
    assert (await bob.call("open_dm", {"user": "alice"}))["room"]["id"] == room  # one room per pair
    assert (await alice.call("send_message", {"room": room, "text": "just us"}))["ok"]
    assert (await bob.expect("message"))["text"] == "just us"

    for attempt in [room, "dm:" + room.split(":")[1] + ":0000", "dm:nobody"]:
        refused = await mallory.call("join_room", {"room": attempt})
        assert refused["error"]["code"] == "forbidden", (attempt, refused)
    status, body = await messages(http, server, room, mallory_token)
    assert status == 403 and "not yours" in body["error"]["message"]
    assert (await mallory.call("history", {"room": room}))["error"]["code"] == "not_in_room"
    assert (await mallory.call("create_room", {"room": "dm:mine"}))["error"]["code"] == "forbidden"
    status, _ = await call(
        http, "POST", f"{server.url}/api/chat/rooms", json={"name": "dm:x:y"}, headers=bearer(mallory_token)
    )
    assert status == 403
    assert (await mallory.call("invite", {"room": room, "user": "mallory"}))["error"]["code"] == "forbidden"
    assert (await alice.call("open_dm", {"user": "alice"}))["error"]["code"] == "invalid_payload"

    _, listed = await call(http, "GET", f"{server.url}/api/chat/dms", headers=bearer(alice_token))
    assert [(dm["room"], dm["user"]["username"]) for dm in listed["dms"]] == [(room, "bob")]
    assert listed["dms"][0]["user"]["email"] is None
    _, theirs = await call(http, "GET", f"{server.url}/api/chat/dms", headers=bearer(bob_token))
    assert [dm["user"]["username"] for dm in theirs["dms"]] == ["alice"]
    _, none = await call(http, "GET", f"{server.url}/api/chat/dms", headers=bearer(mallory_token))
    assert none == {"dms": []}
    status, page = await messages(http, server, room, bob_token)
    assert status == 200 and [m["text"] for m in page["messages"]] == ["just us"]


async def test_search_finds_only_what_the_caller_may_read(
    server: RunningServer, http: aiohttp.ClientSession, users: Users
) -> None:
    (alice, alice_token), (bob, bob_token), (_carol, carol_token) = await users("alice", "bob", "carol")
    url = f"{server.url}/api/chat"
    status, _ = await call(
        http, "POST", f"{url}/rooms", json={"name": "vault", "public": False}, headers=bearer(alice_token)
    )
    assert status == 201
    for client, room in [(alice, "vault"), (alice, "lobby"), (bob, "lobby")]:
        await client.join(room)
    dm = (await alice.call("open_dm", {"user": "carol"}))["room"]["id"]
    await alice.join(dm)
    for room, text in [("vault", "secret plans"), ("lobby", "public plans"), (dm, "direct plans")]:
        assert (await alice.call("send_message", {"room": room, "text": text}))["ok"]

    async def found(token: str, **query: str) -> tuple[int, Any]:
        return await call(http, "GET", f"{url}/search", params={"q": "plans", **query}, headers=bearer(token))

    def texts(body: Any) -> set[str]:
        return {message["text"] for message in body["messages"]}

    assert texts((await found(alice_token))[1]) == {"secret plans", "public plans", "direct plans"}
    assert texts((await found(bob_token))[1]) == {"public plans"}
    assert texts((await found(carol_token))[1]) == {"public plans", "direct plans"}
    status, refused = await found(bob_token, room="vault")
    assert status == 403 and refused["error"]["code"] == "forbidden"
    status, refused = await found(bob_token, room=dm)
    assert status == 403
    _, one_room = await found(alice_token, room="lobby")
    assert texts(one_room) == {"public plans"}
    _, first = await found(alice_token, limit="2")
    assert len(first["messages"]) == 2 and first["nextSkip"] == 2
    _, rest = await found(alice_token, limit="2", skip="2")
    assert len(rest["messages"]) == 1 and rest["nextSkip"] is None
    status, anonymous = await call(http, "GET", f"{url}/search", params={"q": "plans"})
    assert status == 401 and anonymous["error"]["code"] == "unauthorized"
    status, bad = await found(alice_token, q="")
    assert status == 400 and bad["error"]["field"] == "q"
