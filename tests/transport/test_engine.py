"""Engine.IO v4 / Socket.IO v5 conformance of chatio's server, over raw HTTP and a raw WebSocket.

Each test states a rule of the engine.io-protocol or socket.io-protocol specification (version 4 and 5)
and checks it with requests written by hand, the way no well-behaved client library would send them.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest

from chatio.config import Settings
from chatio.keys import METRICS, SERVER
from tests.harness import serving

SEP = "\x1e"


def url(base: str, **query: str) -> str:
    params = {"EIO": "4", **query}
    return f"{base}/socket.io/?" + "&".join(f"{key}={value}" for key, value in params.items())


async def handshake(http: aiohttp.ClientSession, base: str) -> tuple[str, dict[str, Any]]:
    async with http.get(url(base, transport="polling")) as response:
        assert response.status == 200
        body = await response.text()
    assert body.startswith("0{")
    opened = orjson.loads(body[1:])
    return opened["sid"], opened


async def refused(response: aiohttp.ClientResponse, code: int, status: int = 400) -> None:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    assert (await response.json())["code"] == code


@asynccontextmanager
async def polling(settings: Settings | None = None) -> AsyncIterator[tuple[Any, aiohttp.ClientSession]]:
    async with serving(settings or Settings(pod_name="t")) as server, aiohttp.ClientSession() as http:
        yield server, http


async def get(http: aiohttp.ClientSession, base: str, sid: str) -> tuple[int, str]:
    async with http.get(url(base, transport="polling", sid=sid), timeout=aiohttp.ClientTimeout(10)) as answer:
        return answer.status, await answer.text()


async def post(http: aiohttp.ClientSession, base: str, sid: str, body: str | bytes) -> tuple[int, str]:
    async with http.post(url(base, transport="polling", sid=sid), data=body) as answer:
        return answer.status, await answer.text()


# --- the handshake and the HTTP rules ---------------------------------------------------------------------


async def test_the_handshake_announces_milliseconds_and_bytes() -> None:
    settings = Settings(
        pod_name="t", ping_interval_seconds=0.3, ping_timeout_seconds=1.5, max_payload_bytes=5000
    )
    async with polling(settings) as (server, http):
        async with http.get(url(server.url, transport="polling")) as response:
            assert response.status == 200
            assert response.cookies["io"].value and response.cookies["io"]["httponly"]
            opened = orjson.loads((await response.text())[1:])
        assert opened["pingInterval"] == 300 and opened["pingTimeout"] == 1500
        assert opened["maxPayload"] == 5000 and opened["upgrades"] == ["websocket"]
        assert response.cookies["io"].value == opened["sid"]


async def test_requests_the_protocol_does_not_allow_are_refused_with_json() -> None:
    async with polling() as (server, http):
        base = f"{server.url}/socket.io/"
        async with http.get(f"{base}?EIO=4") as response:  # no transport
            await refused(response, 0)
        async with http.get(url(server.url, transport="flash")) as response:
            await refused(response, 0)
        async with http.get(f"{base}?EIO=3&transport=polling") as response:
            await refused(response, 5)
        async with http.get(url(server.url, transport="polling", sid="nope")) as response:
            await refused(response, 1)
        async with http.post(url(server.url, transport="polling"), data="40") as response:
            await refused(response, 2)  # a handshake is a GET
        async with http.put(url(server.url, transport="polling")) as response:
            await refused(response, 2)
        sid, _ = await handshake(http, server.url)
        async with http.put(url(server.url, transport="polling", sid=sid), data="40") as response:
            await refused(response, 3)


async def test_a_post_is_answered_ok_and_its_packets_are_handled_in_order() -> None:
    async with polling() as (server, http):
        sid, _ = await handshake(http, server.url)
        body = '40{"username":"poster"}' + SEP + '421["join_room",{"room":"r"}]' + SEP + "3"
        assert await post(http, server.url, sid, body) == (200, "ok")
        received: list[str] = []
        while not any(packet.startswith("431") for packet in received):
            status, text = await get(http, server.url, sid)
            assert status == 200
            received += [packet for packet in text.split(SEP) if packet != "2"]  # pings may come first
        assert received[0].startswith("40{") and any(p.startswith('431[{"ok":true') for p in received)


async def test_binary_reaches_a_polling_client_in_base64() -> None:
    async with polling() as (server, http):
        sid, _ = await handshake(http, server.url)
        await post(http, server.url, sid, '40{"username":"b"}')
        _status, text = await get(http, server.url, sid)
        sio_sid = orjson.loads(text.split(SEP)[0][2:])["sid"]
        await server.app[SERVER].emit("blob", b"\x01\x02\x03", to=sio_sid)
        packets: list[str] = []
        while not any(packet.startswith("b") for packet in packets):
            _status, text = await get(http, server.url, sid)
            packets += text.split(SEP)
        header = next(packet for packet in packets if packet.startswith("45"))
        assert header.startswith('451-["blob",{"_placeholder":true,"num":0}]')
        assert packets[packets.index(header) + 1] == "b" + base64.b64encode(b"\x01\x02\x03").decode()


async def test_a_malformed_payload_closes_the_session() -> None:
    async with polling() as (server, http):
        sid, _ = await handshake(http, server.url)
        status, _text = await post(http, server.url, sid, "abc")
        assert status == 400
        assert sid not in server.app[SERVER].eio.sessions or server.app[SERVER].eio.sessions[sid].closed
        assert await get(http, server.url, sid) == (200, "1")  # its last poll: CLOSE
        assert (await get(http, server.url, sid))[0] == 400


async def test_a_second_pending_get_closes_the_session() -> None:
    async with polling() as (server, http):
        sid, _ = await handshake(http, server.url)
        first = asyncio.ensure_future(get(http, server.url, sid))
        await asyncio.sleep(0.2)
        status, _text = await get(http, server.url, sid)
        assert status == 400
        assert await first == (200, "1")
        assert (await get(http, server.url, sid))[0] == 400


async def test_a_client_close_releases_the_pending_get_with_a_noop() -> None:
    async with polling() as (server, http):
        sid, _ = await handshake(http, server.url)
        pending = asyncio.ensure_future(get(http, server.url, sid))
        await asyncio.sleep(0.2)
        assert await post(http, server.url, sid, "1") == (200, "ok")
        assert await pending == (200, "6")
        assert (await get(http, server.url, sid))[0] == 400


async def abandon_a_get(server: Any, sid: str) -> None:
    """A long-poll GET on a connection of its own that the client closes while the server holds it (a
    browser's aborted request): the server sees it pending, then only the connection's end."""
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    target = url("", transport="polling", sid=sid)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    await writer.drain()
    session = server.app[SERVER].eio.sessions[sid]
    for _ in range(100):
        if session.poll is not None:
            break
        await asyncio.sleep(0.02)
    assert session.poll is not None, "the server never held the GET"
    writer.close()
    await writer.wait_closed()
    assert await reader.read() == b""  # nothing was answered on it


async def connected(http: aiohttp.ClientSession, base: str, sid: str, username: str) -> str:
    """Connect the Engine.IO session to Socket.IO; its Socket.IO sid."""
    assert await post(http, base, sid, "40" + orjson.dumps({"username": username}).decode()) == (200, "ok")
    _status, text = await get(http, base, sid)
    connect = next(packet for packet in text.split(SEP) if packet.startswith("40"))
    sio_sid: str = orjson.loads(connect[2:])["sid"]
    return sio_sid


async def test_a_get_the_client_abandoned_does_not_refuse_its_next_one() -> None:
    async with polling() as (server, http):
        sid, _ = await handshake(http, server.url)
        await abandon_a_get(server, sid)
        await asyncio.sleep(0.2)  # the server has read the connection's end
        pending = asyncio.ensure_future(get(http, server.url, sid))
        await asyncio.sleep(0.2)
        assert await post(http, server.url, sid, '40{"username":"again"}') == (200, "ok")
        status, text = await pending
        assert status == 200, text
        while not text.startswith("40{"):  # a PING may come first
            status, text = await get(http, server.url, sid)
            assert status == 200 and (text in ("2", "3") or text.startswith("40{")), text
        assert not server.app[SERVER].eio.sessions[sid].closed


async def test_what_is_sent_while_nobody_polls_waits_for_the_next_get() -> None:
    async with polling() as (server, http):
        sid, _ = await handshake(http, server.url)
        sio_sid = await connected(http, server.url, sid, "patient")
        await abandon_a_get(server, sid)
        await asyncio.sleep(0.2)
        await server.app[SERVER].emit("notice", {"n": 1}, to=sio_sid)
        await asyncio.sleep(0.2)  # the abandoned GET's handler woke up, with nobody to answer
        status, text = await get(http, server.url, sid)
        assert status == 200 and '42["notice",{"n":1}]' in text.split(SEP), text


async def test_a_session_past_its_ping_timeout_is_closed_on_time() -> None:
    settings = Settings(pod_name="t", ping_interval_seconds=0.2, ping_timeout_seconds=0.2)
    async with polling(settings) as (server, http):
        sid, _ = await handshake(http, server.url)
        assert await get(http, server.url, sid) == (200, "2")  # a PING, left unanswered
        await asyncio.sleep(0.3)
        assert sid not in server.app[SERVER].eio.sessions or server.app[SERVER].eio.sessions[sid].closed
        assert await get(http, server.url, sid) in (
            (200, "1"),
            (400, '{"code":1,"message":"Session ID unknown"}'),
        )
        assert (await get(http, server.url, sid))[0] == 400


async def test_a_post_larger_than_max_payload_is_refused_at_once() -> None:
    async with polling(Settings(pod_name="t", max_payload_bytes=2048)) as (server, http):
        sid, _ = await handshake(http, server.url)
        reader, writer = await asyncio.open_connection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
        writer.write(
            f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 300000\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readline(), 5)
        assert b" 413 " in head
        writer.close()
        assert (await get(http, server.url, sid))[0] in (200, 400)
        assert sid not in server.app[SERVER].eio.sessions or server.app[SERVER].eio.sessions[sid].closed


async def test_a_post_whose_body_never_comes_is_answered_and_let_go() -> None:
    async with polling() as (server, http):
        server.app[SERVER].eio.body_timeout = 0.5
        sid, _ = await handshake(http, server.url)
        reader, writer = await asyncio.open_connection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
        writer.write(
            f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 1000\r\n\r\n40".encode()
        )
        head = await asyncio.wait_for(reader.readline(), 5)
        assert b" 408 " in head
        # The connection closes after aiohttp's lingering time (10 s by default) at the latest.
        await asyncio.wait_for(reader.read(), 15)
        writer.close()
        assert sid not in server.app[SERVER].eio.sessions or server.app[SERVER].eio.sessions[sid].closed


async def test_cors_follows_the_allowed_origins() -> None:
    settings = Settings(pod_name="t", cors_origins=("https://chat.example",))
    async with polling(settings) as (server, http):
        headers = {"Origin": "https://chat.example", "Access-Control-Request-Headers": "content-type"}
        async with http.options(url(server.url, transport="polling"), headers=headers) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "https://chat.example"
            assert "POST" in response.headers["Access-Control-Allow-Methods"]
        async with http.get(url(server.url, transport="polling"), headers=headers) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Credentials"] == "true"
        async with http.get(
            url(server.url, transport="polling"), headers={"Origin": "https://evil.example"}
        ) as response:
            await refused(response, 3)


# --- WebSocket and the upgrade ------------------------------------------------------------------------------


async def test_a_websocket_session_opens_with_no_upgrades() -> None:
    async with polling() as (server, http), http.ws_connect(url(server.url, transport="websocket")) as ws:
        opened = orjson.loads((await ws.receive_str(timeout=5))[1:])
        assert opened["upgrades"] == [] and opened["sid"] in server.app[SERVER].eio.sessions


async def test_the_upgrade_releases_the_poll_and_writes_no_stray_noop() -> None:
    async with polling() as (server, http):
        sid, _ = await handshake(http, server.url)
        pending = asyncio.ensure_future(get(http, server.url, sid))
        await asyncio.sleep(0.1)
        async with http.ws_connect(url(server.url, transport="websocket", sid=sid)) as ws:
            await ws.send_str("2probe")
            assert await ws.receive_str(timeout=5) == "3probe"
            assert await pending == (200, "6")
            await ws.send_str("5")
            await ws.send_str('40{"username":"up"}')
            first = await ws.receive_str(timeout=5)
            assert first.startswith("40{"), f"the first packet after the upgrade is {first!r}"
            async with http.get(url(server.url, transport="polling", sid=sid)) as response:
                await refused(response, 3)  # the session is on its WebSocket now


async def test_a_poll_sent_before_the_client_read_3probe_is_released_too() -> None:
    # A browser may read the poll answered NOOP before the 3probe on its WebSocket: still polling, it sends
    # one more GET, and pauses polling (then sends 5) only once that GET is answered. Nothing else waits for
    # the session, and its next PING is far away: the server must release that poll (engine.io's server
    # writes a NOOP to a pending poll every 100 ms while a probe is under way).
    settings = Settings(pod_name="t", ping_interval_seconds=20, ping_timeout_seconds=20)
    async with polling(settings) as (server, http):
        sid, _ = await handshake(http, server.url)
        assert await get(http, server.url, sid) == (200, "2")  # the first PING comes within a tick...
        assert await post(http, server.url, sid, "3") == (200, "ok")  # ...and the next one in 20 s
        pending = asyncio.ensure_future(get(http, server.url, sid))
        await asyncio.sleep(0.1)
        async with http.ws_connect(url(server.url, transport="websocket", sid=sid)) as ws:
            await ws.send_str("2probe")
            assert await pending == (200, "6")
            assert await ws.receive_str(timeout=5) == "3probe"
            assert await asyncio.wait_for(get(http, server.url, sid), 3) == (200, "6")
            await ws.send_str("5")
            await ws.send_str('40{"username":"late"}')
            assert (await ws.receive_str(timeout=5)).startswith("40{")


async def test_a_probe_without_a_pending_poll_leaves_no_noop_behind() -> None:
    async with polling() as (server, http):
        sid, _ = await handshake(http, server.url)
        async with http.ws_connect(url(server.url, transport="websocket", sid=sid)) as ws:
            await ws.send_str("2probe")
            assert await ws.receive_str(timeout=5) == "3probe"
            await ws.send_str("5")
            await ws.send_str('40{"username":"up2"}')
            assert (await ws.receive_str(timeout=5)).startswith("40{")


async def test_a_second_websocket_on_an_upgraded_session_is_closed_and_the_first_carries_on() -> None:
    async with (
        polling() as (server, http),
        http.ws_connect(url(server.url, transport="websocket")) as first,
    ):
        sid = orjson.loads((await first.receive_str(timeout=5))[1:])["sid"]
        async with http.ws_connect(url(server.url, transport="websocket", sid=sid)) as second:
            closed = await second.receive(timeout=5)
            assert closed.type is aiohttp.WSMsgType.CLOSE and closed.data == 1000
        await first.send_str('40{"username":"first"}')
        assert (await first.receive_str(timeout=5)).startswith("40{")


async def test_a_silent_websocket_is_closed_after_its_ping_timeout() -> None:
    settings = Settings(pod_name="t", ping_interval_seconds=0.2, ping_timeout_seconds=0.3)
    async with (
        polling(settings) as (server, http),
        http.ws_connect(url(server.url, transport="websocket")) as ws,
    ):
        await ws.receive_str(timeout=5)
        assert await ws.receive_str(timeout=5) == "2"
        message = await ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.TEXT and message.data == "1"
        assert (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSE


# --- malformed packets, binary bounds and idle connects -----------------------------------------------------


@pytest.mark.parametrize(
    "packet",
    [
        "4abc",  # not a Socket.IO packet type
        "42{}",  # EVENT data that is not an array
        "42abc[",  # not JSON
        '40"token"',  # CONNECT data that is not an object
        "44{}",  # CONNECT_ERROR from a client
        '459999999999-["x",{"_placeholder":true,"num":0}]',  # ten billion attachments announced
        '42/nowhere,["x"]',  # an event for a namespace the client has not joined
        "7",  # not an Engine.IO packet type
    ],
)
async def test_a_malformed_packet_closes_the_connection_and_is_counted(packet: str) -> None:
    async with (
        polling() as (server, http),
        http.ws_connect(url(server.url, transport="websocket")) as ws,
    ):
        await ws.receive_str(timeout=5)
        await ws.send_str('40{"username":"bad"}')
        assert (await ws.receive_str(timeout=5)).startswith("40{")
        await ws.send_str(packet)
        kinds = []
        while (message := await ws.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
            kinds.append(message.data[:2])
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1008
    metrics = server.app[METRICS].render().decode()
    assert "chat_bad_packets_total 1.0" in metrics


async def test_binary_attachments_count_against_max_payload() -> None:
    async with (
        polling(Settings(pod_name="t", max_payload_bytes=4096)) as (server, http),
        http.ws_connect(url(server.url, transport="websocket")) as ws,
    ):
        await ws.receive_str(timeout=5)
        await ws.send_str('40{"username":"bin"}')
        await ws.receive_str(timeout=5)
        placeholders = ",".join(f'{{"_placeholder":true,"num":{n}}}' for n in range(3))
        await ws.send_str(f'453-["send_message",{placeholders}]')
        await ws.send_bytes(os.urandom(3000))
        await ws.send_bytes(os.urandom(3000))  # 6,000 bytes of attachments: over the bound
        while (message := await ws.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
            pass
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1008


async def test_chat_commands_refuse_binary_arguments() -> None:
    async with polling() as (server, http), http.ws_connect(url(server.url, transport="websocket")) as ws:
        await ws.receive_str(timeout=5)
        await ws.send_str('40{"username":"bin2"}')
        await ws.receive_str(timeout=5)
        await ws.send_str('451-17["send_message",{"room":"r","text":{"_placeholder":true,"num":0}}]')
        await ws.send_bytes(b"\x00\x01")
        while not (text := await ws.receive_str(timeout=5)).startswith("4317"):
            pass
        ack = orjson.loads(text[4:])[0]
        assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload"
        assert "binary" in ack["error"]["message"]


async def test_a_session_without_a_socketio_connect_is_closed_after_the_connect_timeout() -> None:
    settings = Settings(pod_name="t", connect_timeout_seconds=0.5)
    async with (
        polling(settings) as (server, http),
        http.ws_connect(url(server.url, transport="websocket")) as idle,
        http.ws_connect(url(server.url, transport="websocket")) as joined,
    ):
        await idle.receive_str(timeout=5)
        await joined.receive_str(timeout=5)
        await joined.send_str('40{"username":"joined"}')
        assert (await joined.receive_str(timeout=5)).startswith("40{")
        while (message := await idle.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
            if message.data == "2":
                await idle.send_str("3")  # answering pings does not keep it open
        assert message.type is aiohttp.WSMsgType.CLOSE
        await asyncio.sleep(0.5)
        assert not joined.closed
        assert len(server.app[SERVER].eio.sessions) == 1
        assert "chat_engineio_sessions 1.0" in server.app[METRICS].render().decode()


async def test_sessions_that_never_connect_count_against_the_per_address_limit() -> None:
    async with polling(Settings(pod_name="t", connect_rate_per_minute=3)) as (server, http):
        for _ in range(3):
            await handshake(http, server.url)
        async with http.get(url(server.url, transport="polling")) as response:
            await refused(response, 4, status=429)
