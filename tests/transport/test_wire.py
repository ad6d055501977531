"""The WebSocket wire (chatio/transport/wire.py) against a raw TCP client that writes frames by hand.

The Socket.IO clients of the other suites (python, the npm client, Chromium) only send well-formed frames
in one piece; these tests send what they never would: split and joined frames, fragments with a ping in
between, unmasked or oversized frames, bad UTF-8, a close handshake, deflated messages.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import orjson
import pytest
from aiohttp.web_protocol import RequestHandler

from chatio.config import Settings
from chatio.keys import SERVER
from chatio.rfc6455 import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    accept_key,
    frame,
)
from tests.harness import serving

PATH = "/socket.io/?EIO=4&transport=websocket"


# Every test here runs on both event loops: the tests' asyncio and the uvloop `python -m chatio` serves on
# (tests/conftest.py, pytest_asyncio_loop_factories).
pytestmark = pytest.mark.both_loops


def client_frame(
    payload: bytes, opcode: int = OP_TEXT, *, fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    return frame(opcode, payload, fin=fin, rsv=rsv, mask_key=os.urandom(4) if masked else None)


class RawSocket:
    """A WebSocket client that is only a TCP stream: what it writes is exactly what the test built."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        self.reader, self.writer, self.head = reader, writer, head

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def frame(self) -> tuple[int, int, bytes]:
        """The next server frame: (first byte, opcode, payload)."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 5)
        assert not second & 0x80, "server frames are never masked"
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return first, first & 0x0F, await self.reader.readexactly(size)

    async def text(self) -> str:
        """The next text frame's payload, answering the server's Engine.IO pings on the way."""
        while True:
            first, opcode, payload = await self.frame()
            assert opcode == OP_TEXT, (opcode, payload)
            if first & 0x40:  # deflated
                payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
            if payload != b"2":
                return payload.decode()
            await self.send(client_frame(b"3"))

    async def closed_with(self) -> int:
        """Read up to the server's close frame; return its code, and check the TCP connection ends."""
        while True:
            _first, opcode, payload = await self.frame()
            if opcode == OP_CLOSE:
                code: int = struct.unpack("!H", payload[:2])[0]
                with contextlib.suppress(ConnectionError):  # answer, as a client should
                    await self.send(client_frame(payload[:2], OP_CLOSE))
                assert await asyncio.wait_for(self.reader.read(), 5) == b""
                return code


async def open_raw(
    url: str, *, extensions: str | None = None, prelude: bytes = b"", early: bytes = b""
) -> RawSocket:
    """The handshake; ``prelude`` goes before the upgrade request, ``early`` right after it, unanswered."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16))
    request = (
        f"GET {PATH} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
        + (f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else "")
        + "\r\n"
    ).encode()
    writer.write(prelude + request + early)
    if prelude:  # a keep-alive HTTP request first, on the same connection
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = next(line for line in answer.split(b"\r\n") if line.lower().startswith(b"content-length"))
        await reader.readexactly(int(length.split(b":")[1]))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"Sec-WebSocket-Accept: " + accept_key(key) in head
    return RawSocket(reader, writer, head)


@asynccontextmanager
async def raw_session(url: str, **options: object) -> AsyncIterator[RawSocket]:
    """A raw WebSocket that has opened its Engine.IO session and connected to the default namespace."""
    raw = await open_raw(url, **options)  # type: ignore[arg-type]
    try:
        assert (await raw.text()).startswith("0{")
        await raw.send(client_frame(b'40{"username":"raw"}'))
        assert (await raw.text()).startswith("40{")
        assert (await raw.text()).startswith('42["session"')
        yield raw
    finally:
        raw.writer.close()


async def test_frames_split_joined_fragmented_and_pinged_in_between() -> None:
    async with serving() as server, raw_session(server.url) as raw:
        # One frame byte by byte.
        for byte in client_frame(b'421["join_room",{"room":"r"}]'):
            await raw.send(bytes((byte,)))
        assert (await raw.text()).startswith("431[")
        # Three frames in one write: their acks come back in order.
        await raw.send(b"".join(client_frame(f'42{n}["history",{{"room":"r"}}]'.encode()) for n in (2, 3, 4)))
        assert [(await raw.text())[:3] for _ in range(3)] == ["432", "433", "434"]
        # A message in three fragments with a ping between them: the pong comes back at once.
        message = b'425["send_message",{"room":"r","text":"' + "é".encode() * 50 + b'"}]'
        await raw.send(client_frame(message[:7], fin=False))
        await raw.send(client_frame(b"are you there", OP_PING))
        assert await raw.frame() == (0x80 | OP_PONG, OP_PONG, b"are you there")
        await raw.send(client_frame(message[7:60], OP_CONTINUATION, fin=False))
        await raw.send(client_frame(message[60:], OP_CONTINUATION))
        ack = orjson.loads((await raw.text())[3:])[0]
        assert ack["ok"] and ack["message"]["text"] == "é" * 50


async def test_a_large_frame_trickling_in_and_a_message_in_tiny_fragments() -> None:
    async with serving() as server, raw_session(server.url) as raw:
        await raw.send(client_frame(b'421["join_room",{"room":"r"}]'))
        assert (await raw.text()).startswith("431[")
        text = "t" * 900
        message = b'422["send_message",{"room":"r","text":"' + text.encode() + b'"}]'
        big = client_frame(message)
        for start in range(0, len(big), 7):  # seven bytes at a time, each its own TCP write
            await raw.send(big[start : start + 7])
        assert text in await raw.text()
        # The same message again, one byte per fragment.
        again = message.replace(b"422", b"423", 1)
        pieces = [client_frame(again[:1], fin=False)]
        pieces += [
            client_frame(again[i : i + 1], OP_CONTINUATION, fin=False) for i in range(1, len(again) - 1)
        ]
        pieces.append(client_frame(again[-1:], OP_CONTINUATION))
        await raw.send(b"".join(pieces))
        answer = await raw.text()
        assert answer.startswith("433[") and text in answer


async def test_frames_sent_with_the_upgrade_request_are_not_lost() -> None:
    async with serving() as server:
        raw = await open_raw(server.url, early=client_frame(b'40{"username":"early"}'))
        try:
            assert (await raw.text()).startswith("0{")
            assert (await raw.text()).startswith("40{")
        finally:
            raw.writer.close()


async def test_a_flood_in_one_write_is_handled_in_order() -> None:
    async with serving() as server, raw_session(server.url) as raw:
        count = 300  # well past the read-ahead: reading pauses and resumes
        await raw.send(b"".join(client_frame(f'42{n}["no_such_event",{{}}]'.encode()) for n in range(count)))
        acks = [await raw.text() for _ in range(count)]
        assert [int(text[2:].split("[", 1)[0]) for text in acks] == list(range(count))
        assert all("unknown_event" in text for text in acks)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (client_frame(b"40", masked=False), 1002),
        (client_frame(b"40", rsv=0x40), 1002),  # deflate bit, but deflate was not negotiated
        (client_frame(b"40", rsv=0x20), 1002),
        (client_frame(b"\xff\xfe not utf-8"), 1007),
        (client_frame(b"x", OP_CONTINUATION), 1002),
        (client_frame(b"x", 0x3), 1002),
        (client_frame(b"x" * 200, OP_PING), 1002),
        (client_frame(b"x", OP_PING, fin=False), 1002),
        (client_frame(b"4" + b"x" * 2048), 1009),
        # Announced too large: refused from the header, before any payload arrives.
        (bytes((0x81, 0xFF)) + struct.pack("!Q", 2**40), 1009),
        (client_frame(b"x", OP_CLOSE), 1002),  # a close code takes two bytes
    ],
)
async def test_protocol_violations_close_with_the_right_code(frame: bytes, code: int) -> None:
    async with serving(Settings(pod_name="t", max_payload_bytes=1024)) as server:
        raw = await open_raw(server.url)
        assert (await raw.text()).startswith("0{")
        await raw.send(frame)
        assert await raw.closed_with() == code
        # The server carries on.
        async with raw_session(server.url) as other:
            await other.send(client_frame(b'421["join_room",{"room":"r"}]'))
            assert (await other.text()).startswith("431[")


async def test_a_close_frame_is_answered_and_the_session_ends() -> None:
    async with serving() as server, raw_session(server.url) as raw:
        sockets = server.app[SERVER].eio.sessions
        assert len(sockets) == 1
        await raw.send(client_frame(struct.pack("!H", 1000) + b"bye", OP_CLOSE))
        assert await raw.closed_with() == 1000
        for _ in range(50):
            if not sockets:
                break
            await asyncio.sleep(0.02)
        assert not sockets


async def test_binary_messages_reach_engine_io() -> None:
    async with serving() as server, raw_session(server.url) as raw:
        # A binary Engine.IO message outside a Socket.IO attachment is a malformed packet: the session
        # ends (CLOSE, then the WebSocket closes with 1008), as the reference server's would.
        await raw.send(client_frame(b"\x01\x02", OP_BINARY))
        assert await raw.text() == "1"
        assert await raw.closed_with() == 1008
        assert not server.app[SERVER].eio.sessions


async def test_handshake_refusals() -> None:
    async with serving() as server, aiohttp.ClientSession() as http:
        url = server.url + PATH
        base = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
        async with http.get(url, headers=base | {"Sec-WebSocket-Key": "short"}) as response:
            assert response.status == 400 and "Sec-WebSocket-Key" in await response.text()
        key = base64.b64encode(os.urandom(16)).decode()
        async with http.get(
            url, headers=base | {"Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "8"}
        ) as response:
            assert response.status == 426 and response.headers["Sec-WebSocket-Version"] == "13"
        assert not server.app[SERVER].eio.sessions, "a refused handshake leaves no session behind"


async def test_aiohttp_lets_go_of_taken_over_connections() -> None:
    """After the handshake aiohttp holds nothing of the connection: no handler, no request, no task."""
    async with serving() as server:
        first = await open_raw(server.url)  # starts the server-wide tasks (Engine.IO's service, the pinger)
        assert (await first.text()).startswith("0{")
        before = asyncio.all_tasks()
        prelude = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"  # keep-alive, then the upgrade
        raws = [first] + [await open_raw(server.url, prelude=prelude if n == 0 else b"") for n in range(4)]
        try:
            for raw in raws[1:]:
                assert (await raw.text()).startswith("0{")
            await asyncio.sleep(0.05)
            gc.collect()
            assert not [obj for obj in gc.get_objects() if isinstance(obj, RequestHandler)]
            assert server.runner.server is not None and not server.runner.server.connections
            assert asyncio.all_tasks() <= before
            for raw in raws:  # and the connections work
                await raw.send(client_frame(b'40{"username":"raw"}'))
                assert (await raw.text()).startswith("40{")
        finally:
            for raw in raws:
                raw.writer.close()


def deflated(payload: bytes) -> bytes:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


async def test_per_message_deflate_both_ways_when_turned_on() -> None:
    settings = Settings(pod_name="t", websocket_compression=True)
    offer = "permessage-deflate; client_max_window_bits"
    async with serving(settings) as server, raw_session(server.url, extensions=offer) as raw:
        assert b"permessage-deflate; server_no_context_takeover; client_no_context_takeover" in raw.head
        await raw.send(client_frame(deflated(b'421["join_room",{"room":"r"}]'), rsv=0x40))
        assert (await raw.text()).startswith("431[")
        text = ("a long and repetitive message " * 20).strip()
        request = orjson.dumps(["send_message", {"room": "r", "text": text}])
        await raw.send(client_frame(deflated(b"422" + request), rsv=0x40))
        first, opcode, payload = await raw.frame()
        assert opcode == OP_TEXT and first & 0x40, "a long ack is sent deflated"
        body = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff").decode()
        assert body.startswith("432[") and text in body
        # Every deflate connection shares one compressor (about 256 KiB each otherwise).
        async with raw_session(server.url, extensions=offer):
            wires = [socket.wire for socket in server.app[SERVER].eio.sessions.values()]
            assert len(wires) == 2 and wires[0].deflate is wires[1].deflate is not None
        # A deflated bomb larger than the payload limit once inflated is refused.
        await raw.send(client_frame(deflated(b"4" + b"x" * (settings.max_payload_bytes + 10)), rsv=0x40))
        assert await raw.closed_with() == 1009


async def test_the_aiohttp_client_with_deflate_round_trips() -> None:
    settings = Settings(pod_name="t", websocket_compression=True)
    async with (
        serving(settings) as server,
        aiohttp.ClientSession() as http,
        http.ws_connect(server.url.replace("http", "ws") + PATH, compress=15) as ws,
    ):
        assert ws.compress == 15
        assert (await ws.receive_str(timeout=5)).startswith("0{")
        await ws.send_str('40{"username":"z"}')
        assert (await ws.receive_str(timeout=5)).startswith("40{")
        await ws.send_str('421["join_room",{"room":"r"}]')
        await ws.send_str('422["send_message",{"room":"r","text":"' + "z" * 500 + '"}]')
        while not (text := await ws.receive_str(timeout=5)).startswith("432["):
            pass
        assert "z" * 500 in text


async def open_polling(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url + "/socket.io/?EIO=4&transport=polling") as response:
        opened = await response.text()
    sid: str = orjson.loads(opened[1:])["sid"]
    return sid


async def test_an_upgrade_that_goes_wrong_leaves_the_session_on_long_polling() -> None:
    async with serving() as server, aiohttp.ClientSession() as http:
        sid = await open_polling(http, server.url)
        ws = await http.ws_connect(
            server.url.replace("http", "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={sid}"
        )
        await ws.send_str("2probe")
        assert await ws.receive_str(timeout=5) == "3probe"
        await ws.send_str("not the upgrade packet")
        assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await ws.close()
        # The session goes on over long-polling.
        poll = server.url + f"/socket.io/?EIO=4&transport=polling&sid={sid}"
        async with http.post(poll, data='40{"username":"poller"}') as response:
            assert response.status == 200
        answer = ""
        while "40{" not in answer:
            async with http.get(poll) as response:
                assert response.status == 200
                answer += await response.text()


async def test_a_probed_upgrade_moves_the_session_to_the_websocket() -> None:
    async with serving() as server, aiohttp.ClientSession() as http:
        sid = await open_polling(http, server.url)
        poll = server.url + f"/socket.io/?EIO=4&transport=polling&sid={sid}"
        pending = asyncio.create_task(http.get(poll))
        await asyncio.sleep(0.05)
        ws = await http.ws_connect(
            server.url.replace("http", "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={sid}"
        )
        await ws.send_str("2probe")
        assert await ws.receive_str(timeout=5) == "3probe"
        async with await pending as response:
            assert await response.text() == "6", "the pending long-poll is released with a NOOP"
        await ws.send_str("5")
        await ws.send_str('40{"username":"upgraded"}')
        assert (await ws.receive_str(timeout=5)).startswith("40{")
        assert server.app[SERVER].eio.sessions[sid].transport == "websocket"
        await ws.close()


async def test_a_websocket_probing_an_ended_session_is_closed() -> None:
    async with serving() as server, aiohttp.ClientSession() as http:
        sid = await open_polling(http, server.url)
        url = server.url.replace("http", "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={sid}"
        async with http.ws_connect(url) as ws:
            async with http.post(server.url + f"/socket.io/?EIO=4&transport=polling&sid={sid}", data="1"):
                pass  # the client closes the session over long-polling instead of probing
            closing = await ws.receive(timeout=5)
            assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1001


async def test_shutdown_closes_websockets_with_going_away() -> None:
    async with serving() as server, raw_session(server.url) as raw:
        await server.app[SERVER].close_transports(grace_seconds=0.2)
        assert await raw.closed_with() == 1001


async def test_shutdown_closes_a_websocket_caught_mid_upgrade() -> None:
    async with serving() as server, aiohttp.ClientSession() as http:
        sid = await open_polling(http, server.url)
        url = server.url.replace("http", "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={sid}"
        async with http.ws_connect(url) as ws:
            await ws.send_str("2probe")
            assert await ws.receive_str(timeout=5) == "3probe"
            await server.app[SERVER].close_transports(grace_seconds=0.2)
            closing = await ws.receive(timeout=5)
            assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1001
