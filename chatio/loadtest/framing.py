"""Just enough WebSocket (RFC 6455), Engine.IO v4 and Socket.IO v5 for a load generator.

The generator speaks the protocols itself instead of using a client library because a full client spends
most of a core on bookkeeping the measurement does not need (a message object, a queue and a task wake-up
per received frame). What a client must do is all here and nothing more:

* open: HTTP/1.1 upgrade to ``/socket.io/?EIO=4&transport=websocket``; the server's first frame is the
  Engine.IO open packet ``0{...}``; the client connects to namespace ``/`` with ``40{auth}`` and the server
  answers ``40{"sid":...}`` (or ``44{"message":...}`` when it refuses);
* events are ``42["name",{...}]``; an event that wants an acknowledgement is ``42<id>["name",{...}]`` and
  the answer is ``43<id>[{...}]``;
* the server pings with ``2``; the client must answer ``3`` within the ping timeout.

Or, for a target ending in ``/ws/chat``, seed 001's plain WebSocket protocol (docs/protocol.md, "Plain
WebSocket"): the user is ``?userId=`` on the upgrade, ``ENTER`` joins and is answered with ``ENTER``,
``TALK`` sends and is answered with the stored message, deliveries are ``TALK`` frames of others.

Client frames are masked as the RFC requires; server frames are parsed in :mod:`chatio.loadtest.client`.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import random
import urllib.parse
from typing import Final

import orjson

from chatio.rfc6455 import OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, accept_key, frame

__all__ = ["OP_CLOSE", "OP_CONTINUATION", "OP_PING", "OP_PONG", "OP_TEXT"]


EIO_PONG: Final = b"3"
SIO_PREFIX_EVENT: Final = b"42"
SIO_PREFIX_ACK: Final = b"43"
# The broadcast this generator measures. Receivers recognise it by this prefix alone.
MESSAGE_PREFIX: Final = b'42["message"'
# Send timestamps travel in the message text as ``t=<20 digits of CLOCK_MONOTONIC ns>;``.
STAMP_MARKER: Final = b'"text":"t='
STAMP_DIGITS: Final = 20
# A message's seq (docs/protocol.md, "Delivery"): sampling receivers check that theirs arrive in seq order.
SEQ_MARKER: Final = b'"seq":'
# The same for ``/ws/chat``: TALK frames, the text in "message".
PLAIN_PATH: Final = "/ws/chat"
PLAIN_MESSAGE_PREFIX: Final = b'{"type":"TALK"'
PLAIN_STAMP_MARKER: Final = b'"message":"t='


class WireError(Exception):
    """The peer broke the protocol, or the target URL cannot be used."""


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where to connect: host, port and the request path with Engine.IO's query."""

    host: str
    port: int
    path: str
    #: Seed 001's plain WebSocket protocol (``/ws/chat``) rather than Socket.IO.
    plain: bool = False

    @classmethod
    def parse(cls, url: str) -> Target:
        """Accept ``http://h:p``, ``ws://h:p``, a full ``ws://h:p/socket.io/...`` URL, or
        ``ws://h:p/ws/chat`` (plain WebSocket)."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in {"ws", "http"}:
            raise WireError(f"{url!r}: scheme must be ws:// or http:// (TLS is not supported)")
        if not parts.hostname:
            raise WireError(f"{url!r}: no host")
        query = dict(urllib.parse.parse_qsl(parts.query))
        if parts.path.rstrip("/").endswith(PLAIN_PATH):
            return cls(parts.hostname, parts.port or 80, parts.path.rstrip("/") + "?", plain=True)
        path = parts.path if parts.path not in {"", "/"} else "/socket.io/"
        query.setdefault("EIO", "4")
        query["transport"] = "websocket"
        return cls(parts.hostname, parts.port or 80, f"{path}?{urllib.parse.urlencode(query)}")

    def for_user(self, username: str) -> Target:
        """The target a plain client of ``username`` upgrades to (``?userId=``); Socket.IO's is the same."""
        if not self.plain:
            return self
        return dataclasses.replace(self, path=self.path + urllib.parse.urlencode({"userId": username}))


def handshake(target: Target) -> tuple[bytes, bytes]:
    """The upgrade request and the ``Sec-WebSocket-Accept`` value the server must answer with.

    No ``Sec-WebSocket-Extensions`` is offered, so no per-message deflate: browsers do offer it, and a
    server that accepts it spends noticeably more CPU per delivery than these figures show.
    """
    key = base64.b64encode(os.urandom(16))
    accept = accept_key(key)
    request = (
        f"GET {target.path} HTTP/1.1\r\n"
        f"Host: {target.host}:{target.port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    ).encode()
    return request, accept


def check_upgrade(head: bytes, accept: bytes) -> None:
    """Raise :class:`WireError` unless ``head`` (up to the blank line) is a valid 101 answer."""
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)
    if len(status) < 2 or status[1] != b"101":
        hint = ""
        if len(status) >= 2 and status[1] == b"404":
            hint = " (wrong path? chatio serves Socket.IO at /socket.io/ and plain WebSocket at /ws/chat)"
        raise WireError(f"upgrade refused: {lines[0].decode(errors='replace')}{hint}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"sec-websocket-accept") != accept:
        raise WireError("upgrade answer has a wrong Sec-WebSocket-Accept")


def client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """A complete, masked, unfragmented client frame."""
    return frame(opcode, payload, mask_key=random.randbytes(4))


def connect_packet(auth: dict[str, str]) -> bytes:
    """Socket.IO CONNECT to namespace ``/`` carrying ``auth``."""
    return b"40" + orjson.dumps(auth)


def event_packet(event: str, data: object, ack_id: int | None = None) -> bytes:
    """Socket.IO EVENT, asking for an acknowledgement when ``ack_id`` is given."""
    ident = b"" if ack_id is None else str(ack_id).encode()
    return b"42" + ident + orjson.dumps([event, data])


def send_message_packet(ack_id: int, room_json: bytes, stamp_ns: int) -> bytes:
    """``send_message {room, text}`` with the send time in the text; built without a JSON encoder.

    ``room_json`` is the room id already encoded as a JSON string (quotes included).
    """
    return b'42%d["send_message",{"room":%s,"text":"t=%020d;"}]' % (ack_id, room_json, stamp_ns)


def enter_frame(room: str) -> bytes:
    """Seed 001's ENTER (``/ws/chat``)."""
    return orjson.dumps({"type": "ENTER", "roomId": room, "message": ""})


def talk_frame(room_json: bytes, stamp_ns: int) -> bytes:
    """Seed 001's TALK with the send time in the message; ``room_json`` as for :func:`send_message_packet`."""
    return b'{"type":"TALK","roomId":%s,"message":"t=%020d;"}' % (room_json, stamp_ns)


def split_ack(payload: bytes) -> tuple[int, bytes]:
    """``43<id>[...]`` -> (id, the JSON array after it)."""
    end = 2
    while end < len(payload) and 48 <= payload[end] <= 57:
        end += 1
    if end == 2:
        raise WireError(f"acknowledgement without an id: {payload[:40]!r}")
    return int(payload[2:end]), payload[end:]


def ack_ok(body: bytes) -> bool:
    """Whether an acknowledgement body ``[{"ok":true,...}]`` reports success, without parsing it."""
    return body.startswith(b'[{"ok":true')


def ack_error_code(body: bytes) -> str:
    """The ``error.code`` of a failed acknowledgement, or a short description of what came instead."""
    try:
        value = orjson.loads(body)
        code = value[0]["error"]["code"]
    except (orjson.JSONDecodeError, LookupError, TypeError):
        return f"unreadable ack {body[:60]!r}"
    return str(code)
