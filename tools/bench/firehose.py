"""A calibration server for measuring the load generator itself, not a chat server.

``python -m tools.bench.firehose --port 8095`` speaks the same wire as chatio for the two commands the
generator uses (``join_room``, ``send_message`` with acks, the ``message`` broadcast to the room's other
sockets) on a bare asyncio protocol: each broadcast is encoded once and the finished WebSocket frame is
written to every recipient's transport, with no Socket.IO machinery in between. It costs the server far
less per delivery than any real server here, so the bench can push the generator to its own limit and
report it. No validation, no limits, no persistence: never expose it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import signal
import time
from collections import defaultdict
from typing import Any, cast

import orjson

from chatio.loadtest import framing
from chatio.rfc6455 import OP_TEXT, accept_key, frame, mask

_OPEN = orjson.dumps(
    {"sid": "firehose", "upgrades": [], "pingInterval": 25000, "pingTimeout": 20000, "maxPayload": 1000000}
)


def server_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented text frame."""
    return frame(OP_TEXT, payload)


class Hub:
    """Rooms and their members' transports; one per server."""

    def __init__(self) -> None:
        self.rooms: defaultdict[str, dict[int, asyncio.Transport]] = defaultdict(dict)
        self.seqs: defaultdict[str, int] = defaultdict(int)
        self.ids = itertools.count(1)


class Peer(asyncio.Protocol):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.ident = next(hub.ids)
        self.user = f"u{self.ident}"
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.rooms: set[str] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        for room in self.rooms:
            self.hub.rooms[room].pop(self.ident, None)

    def data_received(self, data: bytes) -> None:
        data = self.buffer + data
        if not self.upgraded:
            head, found, data = data.partition(b"\r\n\r\n")
            if not found:
                self.buffer = head
                return
            self._upgrade(head)
        pos = 0
        while len(data) - pos >= 6:
            length, start = data[pos + 1] & 0x7F, pos + 2
            if length == 126:
                length, start = int.from_bytes(data[pos + 2 : pos + 4], "big"), pos + 4
            elif length == 127:
                length, start = int.from_bytes(data[pos + 2 : pos + 10], "big"), pos + 10
            end = start + 4 + length
            if end > len(data):
                break
            key = data[start : start + 4]
            payload = mask(data[start + 4 : end], key)  # XOR is its own inverse
            opcode = data[pos] & 0x0F
            if opcode == framing.OP_CLOSE:
                self._send_raw(bytes((0x88, 0)))
                if self.transport is not None:
                    self.transport.close()
                return
            if opcode == framing.OP_TEXT:
                self._packet(payload)
            pos = end
        self.buffer = data[pos:]

    def _upgrade(self, head: bytes) -> None:
        key = b""
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = accept_key(key)
        self._send_raw(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + server_frame(b"0" + _OPEN)
        )
        self.upgraded = True

    def _send_raw(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _packet(self, packet: bytes) -> None:
        if packet.startswith(b"40"):
            self._send_raw(server_frame(b'40{"sid":"s%d"}' % self.ident))
        elif packet.startswith(b"42"):
            ack_id, body = framing.split_ack(b"43" + packet[2:])
            event, data = orjson.loads(body)
            answer = self._command(str(event), data)
            self._send_raw(server_frame(b"43%d" % ack_id + orjson.dumps([answer])))

    def _command(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        room = str(data["room"])
        if event == "join_room":
            self.rooms.add(room)
            assert self.transport is not None
            self.hub.rooms[room][self.ident] = self.transport
            info = {"id": room, "name": room, "public": True}
            return {"ok": True, "room": info, "members": [], "history": [], "reset": False}
        self.hub.seqs[room] += 1
        message = {
            "id": secrets.token_hex(12),
            "room": room,
            "seq": self.hub.seqs[room],
            "user": self.user,
            "userId": self.user,
            "text": data["text"],
            "ts": time.time_ns() // 1_000_000,
            "clientMsgId": None,
        }
        frame = server_frame(b'42["message",' + orjson.dumps(message) + b"]")
        for ident, transport in self.hub.rooms[room].items():
            if ident != self.ident:
                transport.write(frame)
        return {"ok": True, "message": message}


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    hub = Hub()
    server = await loop.create_server(lambda: Peer(hub), host, port, backlog=4096)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"firehose serving on http://{host}:{port}", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8095)
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
