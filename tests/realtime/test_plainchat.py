"""``/ws/chat``: seed 001's plain-WebSocket protocol, with a real WebSocket client (aiohttp's), beside the
real python-socketio client in the same rooms."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from chatio.config import Secret, Settings
from tests.accounts_helpers import call, fast_passwords, login, sign, signed_up
from tests.harness import RunningServer, clients, closed_with, serving

TIMEOUT = 5.0


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serving(Settings(pod_name="test"), passwords=fast_passwords()) as running:
        yield running


def ws_url(server: RunningServer, query: str) -> str:
    return server.url.replace("http://", "ws://") + "/ws/chat?" + query


async def frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive(), TIMEOUT)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    decoded: dict[str, Any] = json.loads(message.data)
    return decoded


async def talks(ws: aiohttp.ClientWebSocketResponse, room: str) -> None:
    """``ws`` is open and served: it enters ``room`` and its TALK comes back."""
    await ws.send_json({"type": "ENTER", "roomId": room})
    assert (await frames_until(ws, "ENTER"))[-1]["roomId"] == room
    await ws.send_json({"type": "TALK", "roomId": room, "message": "still here"})
    assert (await frames_until(ws, "TALK"))[-1]["message"] == "still here"


async def frames_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    """Frames up to and including the first of type ``kind``."""
    seen = [await frame(ws)]
    while seen[-1]["type"] != kind:
        seen.append(await frame(ws))
    return seen


async def test_seed_001_wscat_session_as_written(server: RunningServer, http: aiohttp.ClientSession) -> None:
    async with (
        http.ws_connect(ws_url(server, "userId=userA")) as a,
        http.ws_connect(ws_url(server, "userId=userB")) as b,
    ):
        await a.send_str('{"type":"ENTER","roomId":"room-1","userId":"userA","message":""}')
        entered = await frame(a)
        assert entered | {"members": []} == {
            "type": "ENTER",
            "roomId": "room-1",
            "userId": "userA",
            "displayName": "userA",
            "message": "",
            "members": [],
            "reset": False,
        }
        await b.send_str('{"type":"ENTER","roomId":"room-1","userId":"userB","message":""}')
        assert (await frame(b))["members"] == ["userA", "userB"]
        userb = {"roomId": "room-1", "userId": "userB", "displayName": "userB", "message": ""}
        assert await frame(a) == {"type": "ENTER", **userb}
        # A client's userId is ignored: the server says who speaks.
        await a.send_str('{"type":"TALK","roomId":"room-1","userId":"userB","message":"안녕하세요!"}')
        heard, echo = await frame(b), await frame(a)
        assert heard == echo
        assert (heard["type"], heard["roomId"], heard["userId"], heard["message"]) == (
            "TALK",
            "room-1",
            "userA",
            "안녕하세요!",
        )
        assert heard["seq"] == 1 and len(heard["id"]) == 24 and heard["ts"] > 0
        await a.send_str('{"type":"PING","roomId":"room-1","userId":"userA","message":""}')
        await b.close()
        assert await frame(a) == {"type": "LEAVE", **userb}


async def test_plain_and_socketio_clients_share_a_room(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with clients(server.url, "sio") as (sio,):
        await sio.join("lobby")
        await sio.call("send_message", {"room": "lobby", "text": "before"})
        async with http.ws_connect(ws_url(server, "userId=plain")) as plain:
            await plain.send_json({"type": "ENTER", "roomId": "lobby"})
            entered, history = await frame(plain), await frame(plain)
            assert entered["members"] == ["plain", "sio"]
            assert (history["type"], history["message"], history["userId"]) == ("TALK", "before", "sio")
            joined = {"room": "lobby", "user": "plain", "displayName": "plain"}
            assert (await sio.expect("user_joined")) == joined
            await plain.send_json(
                {"type": "TALK", "roomId": "lobby", "message": "from plain", "clientMsgId": "p1"}
            )
            message = await sio.expect("message")
            assert (message["user"], message["text"], message["clientMsgId"]) == ("plain", "from plain", "p1")
            assert (await frame(plain))["seq"] == message["seq"] == 2
            await sio.call("send_message", {"room": "lobby", "text": "from socket.io"})
            talk = await frame(plain)
            assert (talk["userId"], talk["message"], talk["seq"]) == ("sio", "from socket.io", 3)
            # Presence and stats count the plain client like any other.
            async with http.get(f"{server.url}/api/chat/stats") as answer:
                assert (await answer.json())["connections"] == 2
            await plain.send_json({"type": "LEAVE", "roomId": "lobby"})
            assert (await frame(plain))["type"] == "LEAVE"
            assert await sio.expect("user_left") == joined


async def test_a_reconnecting_client_catches_up_with_since_seq(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with clients(server.url, "sio") as (sio,):
        await sio.join("r")
        for n in range(5):
            await sio.call("send_message", {"room": "r", "text": f"m{n}"})
    async with http.ws_connect(ws_url(server, "userId=late")) as plain:
        await plain.send_json({"type": "ENTER", "roomId": "r", "sinceSeq": 3})
        got = await frames_until(plain, "ENTER") + [await frame(plain), await frame(plain)]
        assert [(f["type"], f.get("seq")) for f in got] == [("ENTER", None), ("TALK", 4), ("TALK", 5)]


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        ('{"type":"SHOUT","roomId":"r"}', "type"),
        ('{"type":"ENTER"}', "roomId"),
        ('{"type":"ENTER","roomId":"bad room"}', "roomId"),
        ('{"type":"TALK","roomId":"r","message":"   "}', "message"),
        ('{"type":"TALK","roomId":"r"}', "message"),
        ('{"type":"TALK","roomId":"r","message":"' + "x" * 5000 + '"}', "message"),
        ('{"type":"ENTER","roomId":"r","admin":true}', "admin"),
        ('{"type":"ENTER","roomId":{"$gt":""}}', "roomId"),
        ("[1,2]", None),
        ("{nope", None),
    ],
)
async def test_bad_frames_get_an_error_frame_and_the_connection_stays(
    server: RunningServer, http: aiohttp.ClientSession, sent: str, field: str | None
) -> None:
    async with http.ws_connect(ws_url(server, "userId=alice")) as ws:
        await ws.send_str(sent)
        error = await frame(ws)
        assert error["type"] == "ERROR" and error["code"] == "invalid_payload", error
        assert error.get("field") == field
        await ws.send_bytes(b"\x00\x01")
        assert (await frame(ws))["code"] == "invalid_payload"
        await ws.send_json({"type": "TALK", "roomId": "r", "message": "hi"})
        assert (await frame(ws))["code"] == "not_in_room"
        await ws.send_json({"type": "ENTER", "roomId": "r"})
        assert (await frame(ws))["type"] == "ENTER"


async def test_refusals_before_the_upgrade_are_json(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/ws/chat?userId=alice") as answer:
        body = await answer.json()
        assert answer.status == 400 and "wscat" in body["error"]["message"]
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    for query in ["", "userId=a%20b", "userId=" + "x" * 40]:
        async with http.get(f"{server.url}/ws/chat?{query}", headers=upgrade) as answer:
            body = await answer.json()
            assert answer.status == 400 and body["error"]["field"] == "userId", (query, body)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(ws_url(server, "token=forged"))
    assert refused.value.status == 401


async def test_tokens_and_accounts_only_servers(http: aiohttp.ClientSession) -> None:
    settings = Settings(pod_name="test", allow_guests=False)
    async with serving(settings, passwords=fast_passwords()) as server:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(ws_url(server, "userId=alice"))
        assert refused.value.status == 401
        grant = await signed_up(http, server.url, "carol")
        async with http.ws_connect(ws_url(server, f"token={grant['accessToken']}")) as ws:
            await ws.send_json({"type": "ENTER", "roomId": "r", "userId": "mallory"})
            assert (await frame(ws))["userId"] == "carol"


async def test_the_rate_limit_is_the_users_own(http: aiohttp.ClientSession) -> None:
    async with (
        serving(Settings(pod_name="test", rate_limit_per_minute=2)) as server,
        http.ws_connect(ws_url(server, "userId=flood")) as ws,
    ):
        await ws.send_json({"type": "ENTER", "roomId": "r"})
        await frame(ws)
        answers = []
        for n in range(4):
            await ws.send_json({"type": "TALK", "roomId": "r", "message": f"m{n}"})
            answers.append(await frame(ws))
        assert [a["type"] for a in answers][:2] == ["TALK", "TALK"]
        assert answers[-1]["code"] == "rate_limited" and answers[-1]["retryAfterMs"] > 0


async def test_the_server_pings_quiet_clients(http: aiohttp.ClientSession) -> None:
    async with (
        serving(Settings(pod_name="test", ping_interval_seconds=1)) as server,
        http.ws_connect(ws_url(server, "userId=quiet"), autoping=False) as ws,
    ):
        message = await asyncio.wait_for(ws.receive(), TIMEOUT)
        assert message.type == aiohttp.WSMsgType.PING


async def test_deleting_the_account_closes_its_plain_connection(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    grant = await signed_up(http, server.url, "leaving")
    async with http.ws_connect(ws_url(server, f"token={grant['accessToken']}")) as ws:
        await ws.send_json({"type": "ENTER", "roomId": "r"})
        assert (await frame(ws))["type"] == "ENTER"
        url = f"{server.url}/api/chat/users/{grant['user']['id']}"
        async with http.delete(url, headers={"Authorization": f"Bearer {grant['accessToken']}"}) as answer:
            assert answer.status == 200
        code, reason = await closed_with(ws)
        assert (code, reason) == (1008, "account_deleted: your account was deleted")


async def test_a_plain_connection_ends_when_its_token_expires_unless_refreshed(
    http: aiohttp.ClientSession,
) -> None:
    secret = "k" * 48
    settings = Settings(pod_name="test", jwt_secret=Secret(secret))
    async with serving(settings, passwords=fast_passwords()) as server:
        grant = await signed_up(http, server.url, "alice")
        other = await signed_up(http, server.url, "mallory")
        # JWT expiry is in whole seconds: a lifetime of 3 is 2 to 3 s from now.
        lapsing = sign(secret, grant["user"]["id"], "alice", expires_in=3)
        async with (
            http.ws_connect(ws_url(server, f"token={lapsing}")) as short,
            http.ws_connect(ws_url(server, f"token={lapsing}")) as renewed,
            http.ws_connect(ws_url(server, f"token={grant['accessToken']}")) as long,
            http.ws_connect(ws_url(server, "userId=guest")) as guest,
        ):
            await talks(short, "r")
            await renewed.send_json({"type": "REFRESH", "token": other["accessToken"]})
            refused = await frame(renewed)
            assert (refused["type"], refused["code"], refused["field"]) == ("ERROR", "forbidden", "token")
            await renewed.send_json({"type": "REFRESH", "token": "garbage"})
            assert (await frame(renewed))["code"] == "unauthorized"
            await renewed.send_json({"type": "REFRESH"})
            assert (await frame(renewed))["field"] == "token"
            await renewed.send_json({"type": "REFRESH", "token": grant["accessToken"]})
            assert await frame(renewed) == {"type": "REFRESH", "expiresAt": grant["expiresAt"]}
            code, reason = await closed_with(short, timeout=8)
            assert code == 1008 and reason.startswith("token_expired: "), reason
            await asyncio.sleep(0.5)
            for ws in (renewed, long, guest):
                await talks(ws, "r")


async def test_logout_closes_the_plain_connections_of_that_session_only(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    grant = await signed_up(http, server.url, "bob")
    other = await login(http, server.url, "bob")
    async with (
        http.ws_connect(ws_url(server, f"token={grant['accessToken']}")) as ended,
        http.ws_connect(ws_url(server, f"token={other['accessToken']}")) as kept,
    ):
        await talks(ended, "r")
        body = {"refreshToken": grant["refreshToken"]}
        status, _ = await call(http, "POST", f"{server.url}/api/chat/auth/logout", json=body)
        assert status == 200
        code, reason = await closed_with(ended)
        assert (code, reason) == (1008, "session_ended: you were logged out; log in again")
        await talks(kept, "r")
