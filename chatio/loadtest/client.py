"""One simulated user: an :class:`asyncio.Protocol` that speaks the framing of :mod:`chatio.loadtest.framing`.

``data_received`` is the generator's hot loop. A ``message`` broadcast is recognised by its first bytes and
counted without being decoded; when the connection samples latency, the send stamp is cut out of the text
with one ``bytes.find``, and so is the message's ``seq``: a message whose seq is not above the last one the
connection saw arrived late (reordered, or a repeat), which docs/protocol.md allows and a client must sort
out by seq; the generator counts those (``late``) instead of taking arrival order for seq order. Every
frame read in one ``data_received`` call gets the same receive time, taken once, right after the read.
Everything else (acks, pings, other events) takes the slower general path.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter, deque
from typing import Any, cast

import orjson

from chatio.loadtest import framing


class Tally:
    """Counters shared by every connection of one generator; the hot loop writes them directly."""

    __slots__ = (
        "ack_errors",
        "ack_latency",
        "acked",
        "delivered",
        "disconnects",
        "errors",
        "late",
        "latency",
        "other_events",
    )

    def __init__(self) -> None:
        self.delivered = 0
        self.acked = 0
        self.ack_errors: Counter[str] = Counter()
        self.disconnects = 0
        self.errors: Counter[str] = Counter()
        self.other_events = 0
        #: Sampled deliveries whose seq was not above the last one their connection saw.
        self.late = 0
        # Nanoseconds; arrays rather than lists: no object per sample, no garbage-collector work.
        self.latency = array("q")
        self.ack_latency = array("q")


class Connection(asyncio.Protocol):
    """A Socket.IO client on one WebSocket. Create it through :meth:`open`."""

    def __init__(self, tally: Tally, *, sampling: bool, username: str = "") -> None:
        self.tally = tally
        self.sampling = sampling
        self.username = username
        # How the hot loop tells a delivery, finds its send stamp, and (plain WebSocket) one's own echo.
        self._delivery_prefix = framing.MESSAGE_PREFIX
        self._stamp_marker = framing.STAMP_MARKER
        self._own: bytes | None = None
        self.transport: asyncio.Transport | None = None
        self.sid: str | None = None
        self._accept = b""
        self._upgraded = False
        self._buffer = b""
        self._fragments: list[bytes] = []
        self._next_ack = 1
        self._waiting: dict[int, asyncio.Future[bytes]] = {}
        self._sent_at: dict[int, int] = {}
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._auth = b""
        self._high_seq = 0
        self.closing = False

    @classmethod
    async def open(
        cls, target: framing.Target, auth: dict[str, str], tally: Tally, *, sampling: bool, timeout: float
    ) -> Connection:
        """Connect, upgrade, open Engine.IO and connect to namespace ``/``; raise on any failure."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            username = auth.get("username", "")
            _transport, conn = await loop.create_connection(
                lambda: cls(tally, sampling=sampling, username=username), target.host, target.port
            )
            request, conn._accept = framing.handshake(target.for_user(username))
            conn._auth = framing.connect_packet(auth)
            conn._write(request)
            try:
                await conn._ready
            except BaseException:
                conn.close()
                raise
        return conn

    # --- sending -----------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send_packet(self, packet: bytes) -> None:
        self._write(framing.client_frame(packet))

    async def request(self, event: str, data: object, timeout: float) -> bytes:
        """Emit ``event`` with an acknowledgement id; return the acknowledgement's JSON array."""
        ack_id = self._take_ack_id()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[ack_id] = future
        self.send_packet(framing.event_packet(event, data, ack_id))
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._waiting.pop(ack_id, None)

    def send_message(self, room_json: bytes) -> None:
        """Fire ``send_message``: the ack is timed and checked when it comes, nobody waits for it."""
        ack_id = self._take_ack_id()
        stamp = time.monotonic_ns()
        self._sent_at[ack_id] = stamp
        self._write(framing.client_frame(framing.send_message_packet(ack_id, room_json, stamp)))

    @property
    def unacknowledged(self) -> int:
        return len(self._sent_at)

    def _take_ack_id(self) -> int:
        ack_id = self._next_ack
        self._next_ack += 1
        return ack_id

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(framing.client_frame(b"\x03\xe8", framing.OP_CLOSE))
            self.transport.close()

    # --- receiving ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._ready.done():
            self._ready.set_exception(ConnectionError(f"connection closed during the handshake: {exc}"))
        elif not self.closing:
            self.tally.disconnects += 1
        self.closing = True
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        if not self._upgraded:
            data = self._upgrade(data)
        now = time.monotonic_ns()
        tally = self.tally
        prefix, marker, own = self._delivery_prefix, self._stamp_marker, self._own
        size = len(data)
        pos = 0
        while size - pos >= 2:
            length = data[pos + 1] & 0x7F
            start = pos + 2
            if length > 125:
                if length == 126:
                    start = pos + 4
                    length = int.from_bytes(data[pos + 2 : start], "big")
                else:
                    start = pos + 10
                    length = int.from_bytes(data[pos + 2 : start], "big")
                if start > size:
                    break
            end = start + length
            if end > size:
                break
            if data[pos] == 0x81 and data.startswith(prefix, start):
                if own is not None and data.find(own, start, end) >= 0:
                    self._echo(now)
                else:
                    tally.delivered += 1
                    if self.sampling:
                        mark = data.find(marker, start, end) + len(marker)
                        if mark >= len(marker):
                            tally.latency.append(now - int(data[mark : mark + framing.STAMP_DIGITS]))
                        self._check_seq(data, start, end)
            else:
                self._frame(data[pos], data[start:end], now)
            pos = end
        if pos < size:
            self._buffer = data[pos:]

    def _check_seq(self, data: bytes, start: int, end: int) -> None:
        mark = data.find(framing.SEQ_MARKER, start, end) + len(framing.SEQ_MARKER)
        if mark < len(framing.SEQ_MARKER):
            return
        stop = mark
        while stop < end and 48 <= data[stop] <= 57:
            stop += 1
        seq = int(data[mark:stop] or b"0")
        if seq <= self._high_seq:
            self.tally.late += 1
        else:
            self._high_seq = seq

    def _upgrade(self, data: bytes) -> bytes:
        head, found, rest = data.partition(b"\r\n\r\n")
        if not found:
            self._buffer = data
            return b""
        try:
            framing.check_upgrade(head, self._accept)
        except framing.WireError as exc:
            self._fail(exc)
            return b""
        self._upgraded = True
        return rest

    def _frame(self, first: int, payload: bytes, now: int) -> None:
        opcode = first & 0x0F
        if not first & 0x80:  # a fragment: keep it until the final one
            self._fragments.append(payload)
            return
        if opcode == framing.OP_CONTINUATION:
            payload = b"".join([*self._fragments, payload])
            self._fragments.clear()
            opcode = framing.OP_TEXT
        if opcode == framing.OP_TEXT:
            self._packet(payload, now)
        elif opcode == framing.OP_PING:
            self._write(framing.client_frame(payload, framing.OP_PONG))
        elif opcode == framing.OP_CLOSE:
            self.close()

    def _packet(self, packet: bytes, now: int) -> None:
        if packet.startswith(framing.SIO_PREFIX_ACK):
            self._ack(packet, now)
        elif packet.startswith(framing.SIO_PREFIX_EVENT):
            self.tally.other_events += 1
        elif packet == b"2":
            self.send_packet(framing.EIO_PONG)
        elif packet.startswith(b"0{"):
            self.send_packet(self._auth)
        elif packet.startswith(b"40"):
            if not self._ready.done():
                self.sid = str(orjson.loads(packet[2:]).get("sid", ""))
                self._ready.set_result(None)
        elif packet.startswith(b"44"):
            self._fail(ConnectionRefusedError(packet[2:].decode(errors="replace")))
        elif packet.startswith((b"1", b"41")):
            self.close()

    def _ack(self, packet: bytes, now: int) -> None:
        ack_id, body = framing.split_ack(packet)
        sent_at = self._sent_at.pop(ack_id, None)
        if sent_at is not None:
            tally = self.tally
            if framing.ack_ok(body):
                tally.acked += 1
                tally.ack_latency.append(now - sent_at)
            else:
                tally.ack_errors[framing.ack_error_code(body)] += 1
            return
        future = self._waiting.get(ack_id)
        if future is not None and not future.done():
            future.set_result(body)

    def _echo(self, now: int) -> None:
        """One's own message came back (plain WebSocket only)."""

    def _fail(self, exc: Exception) -> None:
        if not self._ready.done():
            self._ready.set_exception(exc)
        self.close()


class PlainConnection(Connection):
    """A client of ``/ws/chat`` (seed 001's protocol): ENTER to join, TALK to send; the server's answer to
    a TALK is the stored message, one's own, which times the send as an acknowledgement does."""

    def __init__(self, tally: Tally, *, sampling: bool, username: str = "") -> None:
        super().__init__(tally, sampling=sampling, username=username)
        self._delivery_prefix = framing.PLAIN_MESSAGE_PREFIX
        self._stamp_marker = framing.PLAIN_STAMP_MARKER
        self._own = b'"userId":' + orjson.dumps(username) + b',"displayName"'
        self._sends: deque[int] = deque()
        self._entering: asyncio.Future[bytes] | None = None

    async def request(self, event: str, data: object, timeout: float) -> bytes:
        """``join_room`` only: ENTER, answered by the server's ENTER (or an ERROR), as an ack body."""
        if event != "join_room" or not isinstance(data, dict):
            raise framing.WireError(f"{event}: a plain WebSocket client only joins rooms (ENTER)")
        self._entering = asyncio.get_running_loop().create_future()
        self.send_packet(framing.enter_frame(str(data["room"])))
        try:
            async with asyncio.timeout(timeout):
                return await self._entering
        finally:
            self._entering = None

    def send_message(self, room_json: bytes) -> None:
        stamp = time.monotonic_ns()
        self._sends.append(stamp)
        self._write(framing.client_frame(framing.talk_frame(room_json, stamp)))

    @property
    def unacknowledged(self) -> int:
        return len(self._sends)

    def _echo(self, now: int) -> None:
        if self._sends:
            self.tally.acked += 1
            self.tally.ack_latency.append(now - self._sends.popleft())

    def _upgrade(self, data: bytes) -> bytes:
        rest = super()._upgrade(data)
        if self._upgraded and not self._ready.done():
            self._ready.set_result(None)
        return rest

    def _packet(self, packet: bytes, now: int) -> None:
        try:
            frame: Any = orjson.loads(packet)
            kind = frame["type"]
        except (orjson.JSONDecodeError, LookupError, TypeError):
            self.tally.other_events += 1
            return
        entering = self._entering
        if kind == "ENTER" and frame.get("userId") == self.username and entering and not entering.done():
            entering.set_result(b'[{"ok":true}]')
        elif kind == "ERROR":
            code = str(frame.get("code"))
            if entering is not None and not entering.done():
                entering.set_result(b'[{"ok":false,"error":' + orjson.dumps({"code": code}) + b"}]")
            elif self._sends:
                self._sends.popleft()
                self.tally.ack_errors[code] += 1
        else:
            self.tally.other_events += 1
