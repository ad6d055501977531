"""Hostile and broken input: each gets a clear error naming the problem; the server keeps serving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from chatio.config import Settings
from tests.harness import RawSocket, RunningServer, clients, connect, serving


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serving(Settings(pod_name="t", max_payload_bytes=16 * 1024)) as running:
        yield running


@pytest.mark.parametrize(
    ("event", "payload", "code", "field"),
    [
        ("join_room", {"room": 5}, "invalid_payload", "room"),
        ("join_room", {"room": None}, "invalid_payload", "room"),
        ("join_room", {}, "invalid_payload", "room"),
        ("join_room", {"room": "lobby", "extra": 1}, "invalid_payload", "extra"),
        ("join_room", {"room": "a" * 65}, "invalid_payload", "room"),
        ("join_room", {"room": "../etc"}, "invalid_payload", "room"),
        ("join_room", {"room": {"$gt": ""}}, "invalid_payload", "room"),
        ("join_room", {"room": "lobby", "sinceSeq": -1}, "invalid_payload", "sinceSeq"),
        ("join_room", {"room": "lobby", "sinceSeq": "3"}, "invalid_payload", "sinceSeq"),
        ("join_room", {"room": "lobby", "sinceSeq": True}, "invalid_payload", "sinceSeq"),
        ("join_room", ["lobby"], "invalid_payload", None),
        ("join_room", "lobby", "invalid_payload", None),
        ("send_message", {"room": "lobby", "text": "x" * 5000}, "invalid_payload", "text"),
        ("send_message", {"room": "lobby", "text": "   "}, "invalid_payload", "text"),
        ("send_message", {"room": "lobby", "text": 12}, "invalid_payload", "text"),
        ("send_message", {"room": "lobby", "text": {"$where": "1"}}, "invalid_payload", "text"),
        ("send_message", {"room": "lobby", "text": "hi", "userId": "admin"}, "invalid_payload", "userId"),
        (
            "send_message",
            {"room": "lobby", "text": "hi", "clientMsgId": "a b"},
            "invalid_payload",
            "clientMsgId",
        ),
        ("user_status", {"status": ["online"]}, "invalid_payload", "status"),
        ("history", {"room": "lobby", "limit": 0}, "invalid_payload", "limit"),
        ("drop_database", {"room": "lobby"}, "unknown_event", None),
    ],
)
async def test_bad_commands_get_error_acks(
    server: RunningServer, event: str, payload: Any, code: str, field: str | None
) -> None:
    async with clients(server.url, "mallory", "alice") as (mallory, alice):
        await alice.join("lobby")
        ack = await mallory.call(event, payload)
        assert ack["ok"] is False
        assert ack["error"]["code"] == code, ack
        assert ack["error"].get("field") == field, ack
        if field is not None:
            assert ack["error"]["message"].startswith(f"{field}: ")
        # The server is still there, for the attacker and for everybody else.
        assert (await mallory.call("join_room", {"room": "lobby"}))["ok"]
        assert (await alice.call("send_message", {"room": "lobby", "text": "still up"}))["ok"]


async def test_payload_count_is_checked(server: RunningServer) -> None:
    async with clients(server.url, "mallory") as (mallory,):
        none = await mallory.sio.call("join_room", timeout=5)
        assert none["error"]["code"] == "invalid_payload"
        two = await mallory.sio.call("join_room", ({"room": "a"}, {"room": "b"}), timeout=5)
        assert two["error"]["message"] == "expected one payload object, got 2"


async def test_errors_without_an_ack_are_still_reported(server: RunningServer) -> None:
    async with clients(server.url, "mallory") as (mallory,):
        await mallory.sio.emit("no_such_thing", {"x": 1})
        report = await mallory.expect("command_error")
        assert report["event"] == "no_such_thing" and report["error"]["code"] == "unknown_event"
        await mallory.sio.emit("send_message", {"room": "lobby", "text": "not joined"})
        assert (await mallory.expect("command_error"))["error"]["code"] == "not_in_room"


async def test_an_oversized_frame_drops_only_its_sender(server: RunningServer) -> None:
    async with clients(server.url, "alice") as (alice,):
        await alice.join("lobby")
        mallory = await connect(server.url, "mallory")
        await mallory.sio.emit("send_message", {"room": "lobby", "text": "x" * 100_000})
        for _ in range(100):
            if not mallory.sio.connected:
                break
            await asyncio.sleep(0.05)
        assert not mallory.sio.connected
        assert (await alice.call("send_message", {"room": "lobby", "text": "unbothered"}))["ok"]


async def test_a_flood_is_limited_and_nothing_accepted_is_lost() -> None:
    async with (
        serving(Settings(pod_name="t", rate_limit_per_minute=60)) as server,
        clients(server.url, "flooder", "reader") as (flooder, reader),
    ):
        await flooder.join("r")
        await reader.join("r")
        acks = await asyncio.gather(
            *(flooder.call("send_message", {"room": "r", "text": f"flood {i}"}) for i in range(200))
        )
        accepted = [ack["message"]["seq"] for ack in acks if ack["ok"]]
        refused = [ack["error"]["code"] for ack in acks if not ack["ok"]]
        assert len(accepted) == 60 and set(refused) == {"rate_limited"}
        delivered = [(await reader.expect("message"))["seq"] for _ in accepted]
        assert sorted(delivered) == sorted(accepted) == list(range(1, 61))
        stored = await reader.call("history", {"room": "r", "limit": 200})
        assert len(stored["messages"]) == 60


async def test_garbage_on_the_wire_does_not_hurt_others(server: RunningServer) -> None:
    ws_url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with clients(server.url, "alice") as (alice,), aiohttp.ClientSession() as http:
        await alice.join("lobby")
        for frame in ["42[", "4", "garbage", '42["send_message",{"room":"lobby"', "40/nope,", "9"]:
            async with http.ws_connect(ws_url) as ws:
                await ws.receive(timeout=5)  # the Engine.IO open packet
                await ws.send_str("40")
                await ws.send_str(frame)
                await asyncio.sleep(0.05)
        assert (await alice.call("send_message", {"room": "lobby", "text": "fine"}))["ok"]


@pytest.mark.parametrize(
    "event", ["connect", "disconnect", "connect_error", "disconnecting", "newListener", "__disconnect_final"]
)
async def test_reserved_event_names_from_a_client_are_refused(server: RunningServer, event: str) -> None:
    async with aiohttp.ClientSession() as http, clients(server.url, "alice") as (alice,):
        await alice.join("lobby")
        mallory = await RawSocket.open(http, server.url, {"username": "mallory"})
        assert (await mallory.call("join_room", {"room": "lobby"}))["ok"] is True
        # Played as lifecycle events these would forget the socket (disconnect) or re-run the connect
        # handler as another user with a fresh rooms-per-connection count (connect).
        ack = await mallory.call(event, {}, {"username": "alice"})
        assert ack["ok"] is False and ack["error"]["code"] == "unknown_event", ack
        assert "reserved" in ack["error"]["message"]
        await mallory.emit(event)
        assert (await mallory.event("command_error")) == {"event": event, "error": ack["error"]}
        # Still the same socket of the same user, in the same room.
        sent = await mallory.call("send_message", {"room": "lobby", "text": "still me"})
        assert sent["ok"] is True and sent["message"]["user"] == "mallory", sent
        assert (await alice.expect("message"))["user"] == "mallory"
        await mallory.close()
        assert (await alice.expect("user_left"))["user"] == "mallory"
