"""Values a store cannot hold, text that is not Unicode, JSON nested without end and look-alike names, sent
over real sockets and REST: each is refused as ``invalid_payload`` naming the field (an ack, or REST 400),
on the embedded store and on MongoDB; never ``internal`` or 500. (The schemas' own unit tests:
tests/test_schemas.py.)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from chatio.config import Secret, Settings
from tests.accounts_helpers import PASSWORD, bearer, call, fast_passwords, refusal, register, signed_up
from tests.cluster_harness import eventually
from tests.harness import RawSocket, RunningServer, clients, serving

#: The largest integer a payload may carry (docs/protocol.md): JavaScript's Number.MAX_SAFE_INTEGER.
MAX_INTEGER = 2**53 - 1


def fullwidth(text: str) -> str:
    """``text`` in fullwidth Latin letters, which NFKC folds back to ``text``."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


LONE_SURROGATE = "😀".encode("utf-16-le")[:2].decode("utf-16-le", "surrogatepass")


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.mongo)])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    settings = Settings(pod_name="t", jwt_secret=Secret("s" * 40))
    if request.param == "mongo":
        uri, database = request.getfixturevalue("mongodb_uri"), request.getfixturevalue("mongodb_database")
        settings = Settings(
            pod_name="t", jwt_secret=Secret("s" * 40), mongodb_uri=Secret(uri), mongodb_database=database
        )
    async with serving(settings, passwords=fast_passwords()) as running:
        yield running


@pytest.mark.parametrize(
    ("event", "payload", "field"),
    [
        ("join_room", {"room": "r", "sinceSeq": 2**63}, "sinceSeq"),
        ("join_room", {"room": "r", "sinceSeq": 2**64}, "sinceSeq"),
        ("join_room", {"room": "r", "sinceSeq": MAX_INTEGER + 1}, "sinceSeq"),
        ("history", {"room": "r", "after": 2**63}, "after"),
        ("history", {"room": "r", "before": 2**70}, "before"),
        ("history", {"room": "r", "limit": 2**64}, "limit"),
        ("send_message", {"room": "r", "text": f"half an emoji {LONE_SURROGATE}"}, "text"),
        ("send_message", {"room": "r", "text": "hi", "clientMsgId": LONE_SURROGATE}, "clientMsgId"),
        ("send_message", {"room": "r", "text": "hi", LONE_SURROGATE: 1}, "\\ud83d"),
        ("user_status", {"status": LONE_SURROGATE}, "status"),
    ],
)
async def test_socket_values_out_of_bounds_are_invalid_payload(
    server: RunningServer, event: str, payload: dict[str, Any], field: str
) -> None:
    async with aiohttp.ClientSession() as http, clients(server.url, "bob") as (bob,):
        await bob.join("r")
        alice = await RawSocket.open(http, server.url, {"username": "alice"})
        assert (await alice.call("join_room", {"room": "r"}))["ok"]
        ack = await alice.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload", ack
        assert ack["error"]["field"] == field, ack
        await alice.emit(event, payload)  # without an ack: reported as command_error
        assert (await alice.event("command_error"))["error"] == ack["error"]
        assert (await alice.call("send_message", {"room": "r", "text": "still fine"}))["ok"]
        assert (await bob.expect("message"))["text"] == "still fine"
        await alice.close()


async def test_the_largest_integer_is_accepted(server: RunningServer) -> None:
    async with clients(server.url, "alice") as (alice,):
        joined = await alice.join("r", sinceSeq=MAX_INTEGER)
        assert joined["reset"] is True
        page = await alice.call("history", {"room": "r", "after": MAX_INTEGER, "before": MAX_INTEGER})
        assert page == {"ok": True, "messages": [], "hasMore": False}


async def test_a_lone_surrogate_in_an_event_name_is_acknowledged(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        alice = await RawSocket.open(http, server.url, {"username": "alice"})
        ack = await alice.call(f"join{LONE_SURROGATE}", {"room": "r"})
        assert ack["ok"] is False and ack["error"]["code"] == "unknown_event", ack
        await alice.emit(f"join{LONE_SURROGATE}", {"room": "r"})
        assert (await alice.event("command_error"))["error"]["code"] == "unknown_event"
        await alice.close()


async def test_a_lone_surrogate_in_the_auth_payload_is_refused(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket")
        await ws.receive_str(timeout=5)
        await ws.send_str("40" + json.dumps({"username": f"al{LONE_SURROGATE}"}))
        refused = await ws.receive_str(timeout=5)
        assert refused.startswith("44") and json.loads(refused[2:])["data"]["code"] == "invalid_payload"
        await ws.close()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=18446744073709551616", "after"),
        ("after=9223372036854775808", "after"),
        ("before=99999999999999999999999999", "before"),
        ("limit=18446744073709551616", "limit"),
        ("after=-1", "after"),
        ("after=1_0", "after"),
        ("after=%EF%BC%91", "after"),  # a fullwidth digit one, which int() would take
        ("after=1e3", "after"),
    ],
)
async def test_rest_query_values_are_range_checked(server: RunningServer, query: str, field: str) -> None:
    async with aiohttp.ClientSession() as http:
        token = (await signed_up(http, server.url, "reader"))["accessToken"]
        await call(http, "POST", f"{server.url}/api/chat/rooms", json={"name": "r"}, headers=bearer(token))
        url = f"{server.url}/api/chat/rooms/r/messages?{query}"
        status, body = await call(http, "GET", url, headers=bearer(token))
        assert status == 400 and body["error"]["code"] == "invalid_payload", body
        assert body["error"]["field"] == field
        search = f"{server.url}/api/chat/search?q=x&{query.replace('after', 'skip')}"
        status, body = await call(http, "GET", search, headers=bearer(token))
        assert status == 400 and body["error"]["code"] == "invalid_payload", body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"username": "deep", "password": ' + "[" * 100 + "]" * 100 + "}", "password"),
        ('{"username": "deep", "password": ' + "[" * 5_000 + "]" * 5_000 + "}", "body"),
        ('{"username": "deep", "password": ' + "[" * 100_000 + "]" * 100_000 + "}", "body"),
        (
            json.dumps({"username": "ghost", "password": PASSWORD, "displayName": f"a{LONE_SURROGATE}"}),
            "displayName",
        ),
        ('{"username": "nan", "password": NaN}', "body"),
    ],
)
async def test_rest_bodies_nested_too_deep_or_not_unicode_are_refused(
    server: RunningServer, body: str, field: str
) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/api/chat/users"
        status, error = await call(http, "POST", url, data=body, headers={"Content-Type": "application/json"})
        assert status == 400 and error["error"]["code"] == "invalid_payload", error
        assert error["error"]["field"] == field, error


@pytest.mark.parametrize("depth", [40, 2_000, 100_000])
async def test_deep_json_on_a_socket_is_refused(server: RunningServer, depth: int) -> None:
    async with clients(server.url, "alice", "bob") as (alice, bob):
        await alice.join("r")
        await bob.join("r")
        text = "[" * depth + "]" * depth
        if depth <= 900:  # JSON chatio decodes: the schema refuses it, acknowledged
            ack = await alice.call("send_message", {"room": "r", "text": json.loads(text)})
            assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload", ack
            assert "Nested deeper" in ack["error"]["message"]
        else:  # deeper than the decoder goes: a malformed packet, which closes its connection only
            await alice.sio.eio.send('2["send_message",{"room":"r","text":' + text + "}]")
            await eventually(lambda: not alice.sio.connected, 5, "the sender's connection closes")
        assert (await bob.call("send_message", {"room": "r", "text": "alive"}))["ok"]


@pytest.mark.parametrize(
    ("event", "payload", "field"),
    [
        ("join_room", {"room": "secret\n"}, "room"),
        ("join_room", {"room": "secret "}, "room"),
        ("send_message", {"room": "r", "text": "hi", "clientMsgId": "ok\n"}, "clientMsgId"),
        ("open_dm", {"user": "alice\n"}, "user"),
    ],
)
async def test_names_with_a_trailing_newline_are_refused(
    server: RunningServer, event: str, payload: dict[str, Any], field: str
) -> None:
    async with clients(server.url, "alice") as (alice,):
        await alice.join("r")
        ack = await alice.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload", ack
        assert ack["error"]["field"] == field, ack


@pytest.mark.parametrize("lookalike", ["alice\n", "alice ", "alice\u200b", fullwidth("alice")])
async def test_a_lookalike_username_cannot_pose_as_another_user(
    server: RunningServer, lookalike: str
) -> None:
    async with aiohttp.ClientSession() as http, clients(server.url, "bob") as (bob,):
        await register(http, server.url, "alice")
        status, answer = await call(
            http, "POST", f"{server.url}/api/chat/users", json={"username": lookalike, "password": PASSWORD}
        )
        # Not a name at all, or alice's own name once normalised: never a second "alice".
        assert (status, answer["error"]["code"]) in ((400, "invalid_payload"), (409, "conflict")), answer
        refused = await refusal(server.url, {"username": lookalike})
        assert refused["data"]["code"] in ("invalid_payload", "unauthorized"), refused
        ack = await bob.call("open_dm", {"user": lookalike})
        assert ack["ok"] is False or ack["user"] == "alice", ack


async def test_compatibility_forms_are_the_same_name(server: RunningServer) -> None:
    async with clients(server.url, "\ufb01ona", "alice") as (fiona, alice):  # "fi" as a ligature
        assert (await fiona.expect("session"))["user"] == "fiona"
        await alice.join("secret")
        joined = await fiona.join(fullwidth("secret"))  # the room "secret" itself
        assert joined["room"]["id"] == "secret"
        assert {m["user"] for m in joined["members"]} == {"alice", "fiona"}
        async with aiohttp.ClientSession() as http:
            status, answer = await call(
                http,
                "POST",
                f"{server.url}/api/chat/users",
                json={"username": fullwidth("alice"), "password": PASSWORD},
            )
            assert status == 401 or (status == 409 and answer["error"]["field"] == "username"), answer
