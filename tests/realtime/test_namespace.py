"""The Socket.IO commands end to end: in-process server, real python-socketio clients."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import socketio

from chatio.config import Settings
from tests.harness import RunningServer, clients, connect, serving


@pytest.fixture
async def server() -> RunningServer:  # type: ignore[misc]
    async with serving() as running:
        yield running


async def test_session_tells_who_and_where(server: RunningServer) -> None:
    async with clients(server.url, "alice") as (alice,):
        session = await alice.expect("session")
        assert session["user"] == "alice" and session["pod"] == "test" and len(session["userId"]) == 24


async def test_join_send_and_broadcast(server: RunningServer) -> None:
    async with clients(server.url, "alice", "bob") as (alice, bob):
        first = await alice.join("lobby")
        assert first["room"] == {
            "id": "lobby",
            "name": "lobby",
            "public": True,
            "receipts": True,
            "retentionDays": None,
        }
        assert first["history"] == [] and first["reset"] is False
        assert first["members"] == [{"user": "alice", "displayName": "alice", "status": "online"}]
        second = await bob.join("lobby")
        assert [m["user"] for m in second["members"]] == ["alice", "bob"]
        assert await alice.expect("user_joined") == {"room": "lobby", "user": "bob", "displayName": "bob"}

        ack = await alice.call("send_message", {"room": "lobby", "text": " hello ", "clientMsgId": "m1"})
        assert ack["ok"] is True
        message = ack["message"]
        assert (message["seq"], message["user"], message["text"]) == (1, "alice", "hello")
        assert await bob.expect("message") == message
        await alice.nothing("message")

        again = await bob.call("send_message", {"room": "lobby", "text": "hi alice"})
        assert again["message"]["seq"] == 2
        late = await connect(server.url, "carol")
        history = (await late.join("lobby"))["history"]
        assert [m["text"] for m in history] == ["hello", "hi alice"]
        await late.sio.disconnect()


async def test_identity_comes_from_the_server(server: RunningServer) -> None:
    async with clients(server.url, "alice", "bob") as (alice, bob):
        await alice.join("r")
        await bob.join("r")
        spoof = await alice.call("send_message", {"room": "r", "text": "x", "user": "bob"})
        assert spoof["ok"] is False and spoof["error"]["field"] == "user"
        ack = await alice.call("send_message", {"room": "r", "text": "real"})
        assert ack["message"]["user"] == "alice"


async def test_leave_and_disconnect_tell_the_room(server: RunningServer) -> None:
    async with clients(server.url, "alice", "bob") as (alice, bob):
        await alice.join("r")
        await bob.join("r")
        assert (await bob.call("leave_room", {"room": "r"})) == {"ok": True, "room": "r"}
        assert await alice.expect("user_left") == {"room": "r", "user": "bob", "displayName": "bob"}
        await bob.join("r")
        await alice.expect("user_joined")
        await bob.sio.disconnect()
        assert await alice.expect("presence") == {"user": "bob", "displayName": "bob", "status": "offline"}
        assert await alice.expect("user_left") == {"room": "r", "user": "bob", "displayName": "bob"}
        not_member = await alice.call("leave_room", {"room": "elsewhere"})
        assert not_member["error"]["code"] == "not_in_room"


async def test_second_tab_of_a_user_is_not_a_new_member(server: RunningServer) -> None:
    async with clients(server.url, "alice", "bob", "bob") as (alice, bob1, bob2):
        await alice.join("r")
        await bob1.join("r")
        await alice.expect("user_joined")
        ack = await bob2.join("r")
        assert [m["user"] for m in ack["members"]] == ["alice", "bob"]
        await alice.nothing("user_joined")
        await bob1.sio.disconnect()
        await alice.nothing("user_left")
        sent = await alice.call("send_message", {"room": "r", "text": "still there?"})
        assert (await bob2.expect("message"))["id"] == sent["message"]["id"]


async def test_typing_starts_stops_and_expires() -> None:
    async with (
        serving(Settings(pod_name="t", typing_timeout_seconds=0.3)) as server,
        clients(server.url, "alice", "bob") as (alice, bob),
    ):
        await alice.join("r")
        await bob.join("r")
        assert (await alice.call("typing_start", {"room": "r"})) == {"ok": True}
        assert await bob.expect("typing") == {
            "room": "r",
            "user": "alice",
            "displayName": "alice",
            "typing": True,
        }
        await alice.call("typing_start", {"room": "r"})
        await bob.nothing("typing", 0.1)
        await alice.call("typing_stop", {"room": "r"})
        assert (await bob.expect("typing"))["typing"] is False
        await alice.call("typing_start", {"room": "r"})
        assert (await bob.expect("typing"))["typing"] is True
        assert await bob.expect("typing", timeout=2) == {
            "room": "r",
            "user": "alice",
            "displayName": "alice",
            "typing": False,
        }
        await alice.call("typing_start", {"room": "r"})
        await bob.expect("typing")
        await alice.call("send_message", {"room": "r", "text": "done typing"})
        assert (await bob.expect("typing"))["typing"] is False
        await alice.nothing("typing")


async def test_status_reaches_shared_rooms_once(server: RunningServer) -> None:
    async with clients(server.url, "alice", "bob", "carol") as (alice, bob, carol):
        for room in ("a", "b"):
            await alice.join(room)
            await bob.join(room)
        ack = await alice.call("user_status", {"status": "away"})
        assert ack == {"ok": True, "status": "away"}
        assert await bob.expect("presence") == {"user": "alice", "displayName": "alice", "status": "away"}
        await bob.nothing("presence")
        await carol.nothing("presence", 0.05)
        members = (await carol.join("a"))["members"]
        assert {"user": "alice", "displayName": "alice", "status": "away"} in members
        bad = await alice.call("user_status", {"status": "invisible"})
        assert bad["error"]["field"] == "status"


async def test_history_pages_by_seq(server: RunningServer) -> None:
    async with clients(server.url, "alice") as (alice,):
        await alice.join("r")
        for i in range(7):
            await alice.call("send_message", {"room": "r", "text": f"m{i}"})
        latest = await alice.call("history", {"room": "r", "limit": 3})
        assert [m["seq"] for m in latest["messages"]] == [5, 6, 7] and latest["hasMore"]
        older = await alice.call("history", {"room": "r", "before": 5, "limit": 3})
        assert [m["seq"] for m in older["messages"]] == [2, 3, 4]
        newer = await alice.call("history", {"room": "r", "after": 5})
        assert [m["seq"] for m in newer["messages"]] == [6, 7] and not newer["hasMore"]
        capped = await alice.call("history", {"room": "r", "limit": 10_000})
        assert capped["error"]["field"] == "limit"
        outside = await alice.call("history", {"room": "other"})
        assert outside["error"]["code"] == "not_in_room"


async def test_catch_up_after_reconnect() -> None:
    async with (
        serving(Settings(pod_name="t", catchup_max=5, history_page_size=3)) as server,
        clients(server.url, "alice", "bob") as (alice, bob),
    ):
        await alice.join("r")
        await bob.join("r")
        await alice.call("send_message", {"room": "r", "text": "seen"})
        await bob.sio.disconnect()
        for i in range(3):
            await alice.call("send_message", {"room": "r", "text": f"missed {i}"})
        back = await connect(server.url, "bob")
        caught = await back.join("r", sinceSeq=1)
        assert [m["text"] for m in caught["history"]] == ["missed 0", "missed 1", "missed 2"]
        assert caught["reset"] is False
        for i in range(6):
            await alice.call("send_message", {"room": "r", "text": f"flood {i}"})
        await back.call("leave_room", {"room": "r"})
        too_far = await back.join("r", sinceSeq=1)
        assert too_far["reset"] is True
        assert [m["seq"] for m in too_far["history"]] == [8, 9, 10]
        await back.call("leave_room", {"room": "r"})
        from_the_future = await back.join("r", sinceSeq=1000)
        assert from_the_future["reset"] is True
        assert [m["seq"] for m in from_the_future["history"]] == [8, 9, 10]
        await back.sio.disconnect()


async def test_sending_outside_a_room_is_refused(server: RunningServer) -> None:
    async with clients(server.url, "alice") as (alice,):
        ack = await alice.call("send_message", {"room": "r", "text": "hi"})
        assert ack == {
            "ok": False,
            "error": {"code": "not_in_room", "message": "join room 'r' first", "field": "room"},
        }


async def test_room_limits() -> None:
    settings = Settings(pod_name="t", room_max_members=2, rooms_per_connection=2, auto_create_rooms=True)
    async with serving(settings) as server, clients(server.url, "a", "b", "c") as (a, b, c):
        await a.join("r")
        await b.join("r")
        full = await c.call("join_room", {"room": "r"})
        assert full["error"]["code"] == "room_full"
        await a.join("s")
        too_many = await a.call("join_room", {"room": "t"})
        assert too_many["error"]["code"] == "too_many_rooms"
        assert (await a.call("join_room", {"room": "r"}))["ok"] is True


async def test_rooms_need_creating_when_auto_create_is_off() -> None:
    async with (
        serving(Settings(pod_name="t", auto_create_rooms=False)) as server,
        clients(server.url, "alice") as (alice,),
    ):
        ack = await alice.call("join_room", {"room": "nowhere"})
        assert ack["error"]["code"] == "room_not_found"


async def test_rate_limit_refuses_the_flood_and_keeps_serving() -> None:
    async with (
        serving(Settings(pod_name="t", rate_limit_per_minute=10)) as server,
        clients(server.url, "alice", "bob") as (alice, bob),
    ):
        await alice.join("r")
        await bob.join("r")
        acks = [await alice.call("send_message", {"room": "r", "text": str(i)}) for i in range(15)]
        assert [a["ok"] for a in acks] == [True] * 10 + [False] * 5
        refused = acks[-1]["error"]
        assert refused["code"] == "rate_limited" and refused["retryAfterMs"] > 0
        assert (await bob.call("send_message", {"room": "r", "text": "I can talk"}))["ok"]
        stored = await bob.call("history", {"room": "r", "limit": 50})
        assert len(stored["messages"]) == 11


async def test_connect_needs_a_valid_username(server: RunningServer) -> None:
    for auth, problem in [
        ({"username": ""}, "auth.username: Must be 1 to 32"),
        ({"role": "admin"}, "auth.username: Missing data for required field."),
        ({"username": "a b"}, "auth.username: Must be 1 to 32"),
        ({"username": "x" * 33}, "auth.username: Must be 1 to 32"),
        ({"username": "bob", "role": "admin"}, "auth.role: Unknown field."),
        (None, "auth: expected an object"),
    ]:
        client = socketio.AsyncClient(reconnection=False)
        reasons: list[object] = []
        client.on("connect_error", reasons.append)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(server.url, auth=auth, transports=["websocket"], wait_timeout=5)
        assert reasons and problem in str(reasons[0]), (auth, reasons)
    async with clients(server.url, "still-works") as (ok,):
        assert (await ok.expect("session"))["user"] == "still-works"


async def test_shutdown_notice_then_disconnect() -> None:
    from chatio.app import drain
    from chatio.keys import HEALTH

    async with serving() as server, clients(server.url, "alice") as (alice,):
        await alice.join("r")
        await drain(server.app)
        assert server.app[HEALTH].draining
        notice = await alice.expect("server_shutdown")
        assert notice["reconnectAfterMs"] > 0
        for _ in range(50):
            if not alice.sio.connected:
                break
            await asyncio.sleep(0.05)
        assert not alice.sio.connected


async def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().port = 1  # type: ignore[misc]
