"""A WebSocket (RFC 6455, with RFC 7692 per-message deflate) on a raw asyncio transport.

aiohttp serves a WebSocket from inside its request handler: the request, its parsed headers, the HTTP
protocol and parser, a WebSocket reader and writer, two tasks and a stack of coroutine frames live as long
as the connection does, about half of what an idle chat connection costs. Here aiohttp only routes the
upgrade request; :func:`handshake` checks it and builds the 101 answer,
:func:`chatio.transport.seam.take_over` takes the TCP transport away from aiohttp (which then finishes the
request and forgets the connection), and one :class:`Wire` serves the connection from then on: no task
while idle, frames parsed as they arrive, finished frames written as they are.

A :class:`Wire` hands each complete message to its :class:`Receiver`, one at a time and in order, from a
task that exists only while messages wait; more than ``READ_AHEAD`` waiting messages pause reading from
the socket (backpressure on a flooding client). Writes go straight to the transport unless more than
``DIRECT_BUFFER_LIMIT`` bytes are unsent: then frames wait in a backlog, drained by a task that exists
while the backlog does, and past ``max_backlog`` frames the receiver hears it has a slow consumer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import struct
import zlib
from collections import deque
from collections.abc import Mapping
from typing import Final, Protocol

from aiohttp import web

from chatio.rfc6455 import (
    INVALID_DATA,
    NORMAL,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    PROTOCOL_ERROR,
    RSV1,
    TOO_BIG,
    accept_key,
    frame,
    mask,
)
from chatio.transport.frames import close_frame

log = logging.getLogger(__name__)

#: Unsent bytes above which a connection's frames wait in its backlog instead of being written at once.
DIRECT_BUFFER_LIMIT: Final = 256 * 1024
#: Waiting messages above which the wire stops reading from its socket until the receiver catches up.
READ_AHEAD: Final = 32
#: How long a closing wire waits for its peer's close frame (and for its unsent bytes) before aborting.
CLOSE_TIMEOUT_SECONDS: Final = 2.0
#: Messages shorter than this are sent uncompressed even when deflate was negotiated (RFC 7692 allows it).
DEFLATE_MIN_SIZE: Final = 128

_DEFLATE_TAIL: Final = b"\x00\x00\xff\xff"


class Receiver(Protocol):
    """Who a :class:`Wire` serves: an Engine.IO session, or the probe of one that is upgrading."""

    async def on_message(self, data: str | bytes) -> None:
        """One complete message: ``str`` from a text frame, ``bytes`` from a binary one."""

    async def on_lost(self) -> None:
        """The connection is gone; called once, after every message that arrived before it."""

    def on_overflow(self) -> None:
        """The backlog reached ``max_backlog`` frames: a frame was dropped."""


class _Lost:
    """The end-of-connection marker in a wire's inbox."""


_LOST: Final = _Lost()


class _Fragments:
    """A message arriving in several frames: its opcode, whether it is deflated, the payload so far."""

    __slots__ = ("compressed", "data", "opcode")

    def __init__(self, opcode: int, compressed: bool, data: bytearray) -> None:
        self.opcode, self.compressed, self.data = opcode, compressed, data


class WebSocketFailure(Exception):
    """The peer broke the protocol: the wire closes with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


# --- the handshake ------------------------------------------------------------------------------------------


class Deflate:
    """Per-message deflate as this server speaks it: no context kept between messages, either way.

    The server asks for ``client_no_context_takeover`` and declares ``server_no_context_takeover`` (RFC
    7692 lets a server do both whatever the offer said), so every message inflates and deflates on its own:
    nothing per connection but this object's reference. Outgoing frames are compressed with one shared
    compressor, flushed fully after each message, and a broadcast's frame is compressed once for all its
    recipients.
    """

    __slots__ = ("_compressor", "_last")

    def __init__(self, window_bits: int = 15) -> None:
        self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits)
        self._last: tuple[bytes, bytes] = (b"", b"")

    def inflate(self, payload: bytes, limit: int) -> bytes:
        inflater = zlib.decompressobj(-15)
        try:
            data = inflater.decompress(payload + _DEFLATE_TAIL, limit + 1)
        except zlib.error as exc:
            raise WebSocketFailure(INVALID_DATA, f"bad deflate data: {exc}") from None
        if len(data) > limit or inflater.unconsumed_tail:
            raise WebSocketFailure(TOO_BIG, f"message larger than {limit} bytes once inflated")
        return data

    def deflate(self, finished: bytes) -> bytes:
        """The compressed version of a finished, unmasked, uncompressed frame (the same frame if small)."""
        last_frame, last_compressed = self._last
        if finished is last_frame:
            return last_compressed
        head = 2 if finished[1] < 126 else (4 if finished[1] == 126 else 10)
        payload = finished[head:]
        if len(payload) < DEFLATE_MIN_SIZE:
            return finished
        compressed = self._compressor.compress(payload) + self._compressor.flush(zlib.Z_FULL_FLUSH)
        if compressed.endswith(_DEFLATE_TAIL):
            compressed = compressed[: -len(_DEFLATE_TAIL)]
        result = frame(finished[0] & 0x0F, compressed, rsv=RSV1)
        self._last = (finished, result)
        return result


_DEFLATE_PARAMETERS: Final = {
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
}


def negotiate_deflate(offers: str) -> tuple[str, Deflate] | None:
    """The ``Sec-WebSocket-Extensions`` answer and the :class:`Deflate` for the first acceptable offer."""
    for offer in offers.split(","):
        name, *parameters = (part.strip() for part in offer.split(";"))
        if name.lower() != "permessage-deflate":
            continue
        seen: dict[str, str | None] = {}
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            key = key.strip().lower()
            seen[key] = value.strip().strip('"') or None
        if not seen.keys() <= _DEFLATE_PARAMETERS:
            continue
        window = seen.get("server_max_window_bits")
        if "server_max_window_bits" in seen and (
            window is None or not window.isdigit() or not 9 <= int(window) <= 15
        ):
            continue  # 8 cannot be honoured with zlib; an empty value is malformed
        answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        if window is not None:
            answer += f"; server_max_window_bits={window}"
        return answer, shared_deflate(int(window) if window is not None else 15)
    return None


_SHARED_DEFLATES: dict[int, Deflate] = {}


def shared_deflate(window_bits: int) -> Deflate:
    """The one :class:`Deflate` of this process for a window size: a compressor holds about 256 KiB, so
    connections share it (each message is compressed and fully flushed in one call, on one event loop)."""
    deflate = _SHARED_DEFLATES.get(window_bits)
    if deflate is None:
        deflate = _SHARED_DEFLATES[window_bits] = Deflate(window_bits)
    return deflate


def handshake(
    request: web.BaseRequest, *, compress: bool, headers: Mapping[str, str] | None = None
) -> tuple[bytes, Deflate | None] | web.Response:
    """The 101 answer to a WebSocket upgrade request (and the deflate it agreed), or a refusal.

    ``headers`` go into the answer as they are (CORS, a cookie)."""
    extra = headers or {}
    asked = request.headers
    if asked.get("Upgrade", "").lower() != "websocket":
        return web.Response(status=400, text="expected Upgrade: websocket")
    if "upgrade" not in (token.strip().lower() for token in asked.get("Connection", "").split(",")):
        return web.Response(status=400, text="expected Connection: Upgrade")
    if asked.get("Sec-WebSocket-Version") != "13":
        return web.Response(
            status=426, text="WebSocket version 13 only", headers={"Sec-WebSocket-Version": "13"}
        )
    key = asked.get("Sec-WebSocket-Key", "")
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        return web.Response(status=400, text="Sec-WebSocket-Key must be 16 bytes in base64")
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key.encode()).decode()}",
    ]
    lines += [f"{name}: {value}" for name, value in extra.items()]
    deflate = None
    if compress:
        agreed = negotiate_deflate(",".join(asked.getall("Sec-WebSocket-Extensions", [])))
        if agreed is not None:
            lines.append(f"Sec-WebSocket-Extensions: {agreed[0]}")
            deflate = agreed[1]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), deflate


class Detached(web.StreamResponse):
    """What the request handler returns once the wire has the connection: aiohttp writes nothing."""

    def __init__(self) -> None:
        super().__init__(status=101)

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


# --- the wire -----------------------------------------------------------------------------------------------


class Wire(asyncio.Protocol):
    """One WebSocket connection after the handshake; see the module docstring."""

    __slots__ = (
        "_close_sent",
        "_close_timer",
        "_closing_frame",
        "_drained",
        "_fragments",
        "_inbox",
        "_pending",
        "_reader",
        "_write_paused",
        "backlog",
        "deflate",
        "flusher",
        "lost",
        "max_backlog",
        "max_size",
        "receiver",
        "transport",
    )

    #: Set by :func:`take_over`, and the receiver by its caller, before the first byte can arrive.
    transport: asyncio.Transport
    receiver: Receiver

    def __init__(self, *, max_size: int, max_backlog: int = 0, deflate: Deflate | None = None) -> None:
        self.max_size = max_size
        self.max_backlog = max_backlog
        self.deflate = deflate
        self.backlog: deque[bytes] | None = None
        self.flusher: asyncio.Task[None] | None = None
        self.lost = False
        self._pending: bytearray | None = None
        self._fragments: _Fragments | None = None
        self._inbox: deque[str | bytes | _Lost] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._close_sent = False
        self._closing_frame: bytes | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._write_paused = False
        self._drained: asyncio.Future[None] | None = None

    # --- writing -----------------------------------------------------------------------------------------

    def send(self, finished: bytes) -> bool:
        """Write a finished frame now, or after the frames already waiting. False when it was dropped."""
        if self._close_sent or self.lost:
            return False
        if self.deflate is not None:
            finished = self.deflate.deflate(finished)
        if self.backlog is None:
            transport = self.transport
            if transport.get_write_buffer_size() <= DIRECT_BUFFER_LIMIT:
                transport.write(finished)
                return True
            self.backlog = deque()
            self.flusher = asyncio.get_running_loop().create_task(self._flush())
        if self.max_backlog and len(self.backlog) >= self.max_backlog:
            self.receiver.on_overflow()
            return False
        self.backlog.append(finished)
        return True

    async def _flush(self) -> None:
        backlog = self.backlog
        assert backlog is not None
        try:
            while backlog and not self.lost:
                if self.transport.get_write_buffer_size() > DIRECT_BUFFER_LIMIT:
                    await self._drain()
                    continue
                self.transport.write(backlog.popleft())
        finally:
            self.backlog = None
            self.flusher = None
            if self._closing_frame is not None and not self.lost:
                self.transport.write(self._closing_frame)
                self._closing_frame = None

    async def _drain(self) -> None:
        """Return once the transport's buffer fell below its low-water mark (or the connection ended)."""
        if not self._write_paused:
            await asyncio.sleep(0)  # over our limit, under the transport's high-water mark: let it write
            return
        self._drained = asyncio.get_running_loop().create_future()
        try:
            await self._drained
        finally:
            self._drained = None

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def drop_backlog(self) -> None:
        """Forget the frames waiting (an evicted slow consumer will not read them)."""
        if self.backlog is not None:
            self.backlog.clear()

    @property
    def sending(self) -> bool:
        """True while frames wait for a peer that can still receive them."""
        return self.backlog is not None and not self.lost

    # --- closing -----------------------------------------------------------------------------------------

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Start the closing handshake: a close frame (after the backlog), then the peer's, then TCP close.

        A peer that does not answer within ``CLOSE_TIMEOUT_SECONDS`` has its connection aborted.
        """
        if self._close_sent or self.lost:
            return
        self._close_sent = True
        closing = close_frame(code, reason)
        if self.backlog is None:
            self.transport.write(closing)
        else:
            self._closing_frame = closing
        loop = asyncio.get_running_loop()
        self._close_timer = loop.call_later(CLOSE_TIMEOUT_SECONDS, self.transport.abort)

    def abort(self) -> None:
        if not self.lost:
            self.transport.abort()

    def _fail(self, failure: WebSocketFailure) -> None:
        log.info("closing a WebSocket (%d): %s", failure.code, failure)
        self._pending = None
        self._fragments = None
        self.close(failure.code, str(failure)[:120])
        if self.backlog is None:
            self.transport.close()

    # --- asyncio.Protocol --------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # An unfinished frame waits in one bytearray that grows in place (a frame trickling in byte by
        # byte costs its length, not its length squared).
        pending = self._pending
        buffer: bytes | bytearray = data
        if pending is not None:
            pending += data
            buffer = pending
        try:
            used = self._parse(buffer)
        except WebSocketFailure as failure:
            self._fail(failure)
            return
        if used == len(buffer) or self.transport.is_closing():
            self._pending = None
        elif pending is None:
            self._pending = bytearray(data[used:])
        elif used:
            del pending[:used]

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.lost:
            return
        self.lost = True
        self._pending = None
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if self.backlog is not None:
            self.backlog.clear()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._deliver(_LOST)

    # --- reading -----------------------------------------------------------------------------------------

    def _parse(self, buffer: bytes | bytearray) -> int:
        """Handle every complete frame in ``buffer``; return how many bytes they took."""
        position, end = 0, len(buffer)
        while end - position >= 2 and not self.transport.is_closing():
            first, second = buffer[position], buffer[position + 1]
            if not second & 0x80:
                raise WebSocketFailure(PROTOCOL_ERROR, "a client's frames must be masked")
            size, head = second & 0x7F, 2
            if size == 126:
                if end - position < 4:
                    break
                size, head = struct.unpack_from("!H", buffer, position + 2)[0], 4
            elif size == 127:
                if end - position < 10:
                    break
                size, head = struct.unpack_from("!Q", buffer, position + 2)[0], 10
            opcode = first & 0x0F
            if opcode >= 0x8:
                if size > 125 or not first & 0x80:
                    raise WebSocketFailure(PROTOCOL_ERROR, "control frames must be whole and short")
            elif size + (len(self._fragments.data) if self._fragments else 0) > self.max_size:
                raise WebSocketFailure(TOO_BIG, f"message larger than {self.max_size} bytes")
            stop = position + head + 4 + size
            if stop > end:
                break
            key = bytes(buffer[position + head : position + head + 4])
            payload = mask(bytes(buffer[position + head + 4 : stop]), key)
            position = stop
            self._frame(first, opcode, payload)
        return position

    def _frame(self, first: int, opcode: int, payload: bytes) -> None:
        final, compressed, reserved = first & 0x80, first & 0x40, first & 0x30
        if reserved or (
            compressed and (self.deflate is None or opcode in (OP_CONTINUATION, OP_CLOSE, OP_PING, OP_PONG))
        ):
            raise WebSocketFailure(PROTOCOL_ERROR, "reserved bits set")
        if opcode == OP_CLOSE:
            self._closed_by_peer(payload)
        elif opcode == OP_PING:
            if not self._close_sent:
                self.transport.write(frame(OP_PONG, payload))
        elif opcode == OP_PONG:
            pass
        elif opcode == OP_CONTINUATION:
            fragments = self._fragments
            if fragments is None:
                raise WebSocketFailure(PROTOCOL_ERROR, "a continuation frame without a message")
            fragments.data += payload
            if final:
                self._fragments = None
                self._message(fragments.opcode, fragments.compressed, bytes(fragments.data))
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._fragments is not None:
                raise WebSocketFailure(PROTOCOL_ERROR, "a new message before the last one ended")
            if final:
                self._message(opcode, bool(compressed), payload)
            else:
                self._fragments = _Fragments(opcode, bool(compressed), bytearray(payload))
        else:
            raise WebSocketFailure(PROTOCOL_ERROR, f"unknown opcode {opcode}")

    def _closed_by_peer(self, payload: bytes) -> None:
        if len(payload) == 1:
            raise WebSocketFailure(PROTOCOL_ERROR, "a close frame's code takes two bytes")
        if not self._close_sent:
            code = struct.unpack_from("!H", payload)[0] if payload else NORMAL
            self._close_sent = True
            self.transport.write(close_frame(code if 1000 <= code < 5000 else PROTOCOL_ERROR))
        self._pending = None
        self.transport.close()

    def _message(self, opcode: int, compressed: bool, payload: bytes) -> None:
        if self._close_sent:
            return  # after our close frame, messages are ignored (RFC 6455 section 5.5.1)
        if compressed:
            assert self.deflate is not None
            payload = self.deflate.inflate(payload, self.max_size)
        if opcode == OP_TEXT:
            try:
                self._deliver(payload.decode())
            except UnicodeDecodeError:
                raise WebSocketFailure(INVALID_DATA, "a text frame that is not UTF-8") from None
        else:
            self._deliver(payload)

    def _deliver(self, item: str | bytes | _Lost) -> None:
        if self._inbox is None:
            self._inbox = deque((item,))
            self._reader = asyncio.get_running_loop().create_task(self._read())
            return
        self._inbox.append(item)
        if len(self._inbox) >= READ_AHEAD and not self.lost and self.transport.is_reading():
            self.transport.pause_reading()

    async def _read(self) -> None:
        inbox = self._inbox
        assert inbox is not None
        try:
            while inbox:
                item = inbox.popleft()
                if len(inbox) <= READ_AHEAD // 2 and not self.lost and not self.transport.is_reading():
                    self.transport.resume_reading()
                try:
                    if isinstance(item, _Lost):
                        await self.receiver.on_lost()
                    else:
                        await self.receiver.on_message(item)
                except Exception:
                    log.exception("a WebSocket message handler failed")
        finally:
            self._inbox = None
            self._reader = None
