"""Engine.IO sessions over WebSocket with one task each, direct writes, and a shared pinger.

python-engineio serves a WebSocket with, per connection, a reader that wraps every read in a new task and
a timer (``wait_for``), a writer task that wakes on an ``asyncio.Queue`` (itself a deque, two waiter
deques and an event), and a ping task that sleeps through each ping interval. At 10,000 idle connections
those objects are most of the server's memory and most of the garbage collector's work.

:class:`WebSocketSession` replaces that, for every Engine.IO socket whose transport is (or becomes, after
the polling-to-WebSocket upgrade) a WebSocket:

* **Reading** happens in the aiohttp request's own task, one ``receive()`` at a time; the ping timeout is
  enforced by Engine.IO's service task, which already watches every socket.
* **Writing** is synchronous: an outgoing packet becomes a finished frame written to the transport at once,
  in call order. Only when the transport holds more than ``DIRECT_BUFFER_LIMIT`` unsent bytes do frames
  wait, in a backlog drained by a task that exists while the backlog does; past ``max_backlog`` frames the
  socket is a slow consumer and the server is told (``report_overflow``).
* **Pinging** is done by one :class:`Pinger` per server, which walks the sockets in buckets so that the
  pings of 10,000 connections are spread over the interval instead of fired at once.

The Engine.IO socket object is kept (python-socketio and python-engineio look it up by sid and call its
``send``, ``close``, ``receive`` and ``check_ping_timeout``); its class is switched to
:class:`WebSocketSession` when its WebSocket takes over, and its queue is replaced by :data:`NO_QUEUE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from aiohttp import WSMsgType
from aiohttp.web import WebSocketResponse
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from engineio.async_drivers import aiohttp as eio_aiohttp
from engineio.async_socket import AsyncSocket

from chatio.transport.frames import PING_FRAME, packet_frame

log = logging.getLogger(__name__)

#: Unsent bytes above which a connection's frames wait in its backlog instead of being written at once.
DIRECT_BUFFER_LIMIT: Final = 256 * 1024
#: How often the pinger wakes; each wake pings one bucket of sockets.
PING_TICK_SECONDS: Final = 0.25
#: How long a closing session waits for its client's close frame before dropping the connection.
CLOSE_TIMEOUT_SECONDS: Final = 2.0

OverflowListener = Callable[[str], None]
#: ``report(socket)``: the server's one place that tells its OverflowListener about a socket, once.
OverflowReport = Callable[[Any], None]


class NoQueue:
    """Stands in for the ``asyncio.Queue`` of a socket that writes directly: always empty, refuses puts.

    One instance serves every session. Engine.IO only touches the queue of a WebSocket session through
    ``send`` (overridden) and ``close(wait=True)`` (``join``); a put here would be a bug, and says so.
    """

    _unfinished_tasks = 0

    def qsize(self) -> int:
        return 0

    def empty(self) -> bool:
        return True

    async def join(self) -> None:
        return None

    def put_nowait(self, item: object) -> None:
        raise RuntimeError("a WebSocket session has no Engine.IO queue; use send() or push()")

    async def put(self, item: object) -> None:
        self.put_nowait(item)


NO_QUEUE: Final = NoQueue()


class WebSocketSession(AsyncSocket):  # type: ignore[misc]  # untyped base class
    """An Engine.IO socket served by a WebSocket; see the module docstring. Built by :func:`adopt`."""

    chatio_ws: Any
    last_ping: float | None
    wire: asyncio.Transport
    backlog: deque[bytes] | None
    flusher: asyncio.Task[None] | None
    max_backlog: int
    report_overflow: OverflowReport
    bad_packets: int

    # --- writing ---------------------------------------------------------------------------------------

    def push(self, frame: bytes) -> bool:
        """Write ``frame`` now, or after the frames already waiting. False when it was dropped."""
        if self.closed:
            return False
        wire = self.wire
        if self.backlog is None:
            if wire.is_closing():
                return False
            if wire.get_write_buffer_size() <= DIRECT_BUFFER_LIMIT:
                wire.write(frame)
                return True
            self.backlog = deque()
            self.flusher = asyncio.get_running_loop().create_task(self._flush())
        if self.max_backlog and len(self.backlog) >= self.max_backlog:
            self.report_overflow(self)
            return False
        self.backlog.append(frame)
        return True

    async def send(self, pkt: eio_packet.Packet) -> None:
        self.push(packet_frame(pkt.encode()))

    async def _flush(self) -> None:
        backlog, wire = self.backlog, self.wire
        protocol = self.chatio_ws._sock._writer.protocol
        try:
            while backlog and not wire.is_closing():
                if wire.get_write_buffer_size() > DIRECT_BUFFER_LIMIT:
                    # aiohttp's protocol pauses above the transport's high-water mark; this returns once
                    # the client has read enough. The sleep covers a buffer not (yet) paused.
                    await protocol._drain_helper()
                    await asyncio.sleep(0)
                    continue
                wire.write(backlog.popleft())
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.backlog = None
            self.flusher = None
            if self.closed:
                self._close_websocket()

    def drop_backlog(self) -> None:
        """Forget the frames waiting for this socket (an evicted slow consumer will not read them)."""
        if self.backlog is not None:
            self.backlog.clear()

    @property
    def sending(self) -> bool:
        """True while frames wait for a client that can still receive them."""
        return self.backlog is not None and not self.wire.is_closing()

    # --- Engine.IO hooks ---------------------------------------------------------------------------------

    def schedule_ping(self) -> None:
        # A PONG arrived: the pinger sends the next PING in this socket's turn.
        self.last_ping = None

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        await super().close(wait=False, abort=abort, reason=reason)
        if self.backlog is None:
            self._close_websocket()

    def _close_websocket(self) -> None:
        ws: WebSocketResponse = self.chatio_ws._sock
        if not ws.closed and not ws._closing:
            task = asyncio.get_running_loop().create_task(_close_quietly(ws))
            _background.add(task)
            task.add_done_callback(_background.discard)

    # --- reading -----------------------------------------------------------------------------------------

    async def serve(self, pinger: Pinger) -> None:
        """Read packets until the WebSocket ends; Engine.IO's ``receive`` handles each."""
        ws: WebSocketResponse = self.chatio_ws._sock
        pinger.add(self)
        try:
            while not self.closed:
                message = await ws.receive()
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                await self._receive(message.data)
        finally:
            pinger.discard(self)
            if not self.closed:
                await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _receive(self, data: str | bytes) -> None:
        try:
            await self.receive(eio_packet.Packet(encoded_packet=data))
        except eio_exceptions.SocketIsClosedError:
            return
        except (ValueError, KeyError, IndexError, TypeError, eio_exceptions.UnknownPacketError) as exc:
            # Garbage from a client: report the first per session, ignore the rest (no log flood).
            self.bad_packets += 1
            if self.bad_packets == 1:
                log.warning("session %s sent a malformed Engine.IO packet: %r", self.sid, exc)


_background: set[asyncio.Task[None]] = set()


async def _close_quietly(ws: WebSocketResponse) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(), CLOSE_TIMEOUT_SECONDS)


def adopt(socket: AsyncSocket, chat_ws: Any, *, max_backlog: int, report_overflow: OverflowReport) -> None:
    """Make ``socket`` a :class:`WebSocketSession` on ``chat_ws``, sending what its queue held first."""
    waiting = []
    while not socket.queue.empty():
        item = socket.queue.get_nowait()
        socket.queue.task_done()
        if item is not None:
            waiting.append(item)
    socket.__class__ = WebSocketSession
    session: WebSocketSession = socket
    session.chatio_ws = chat_ws
    session.wire = chat_ws._sock._writer.transport
    session.backlog = None
    session.flusher = None
    session.max_backlog = max_backlog
    session.report_overflow = report_overflow
    session.bad_packets = 0
    session.queue = NO_QUEUE
    for item in waiting:
        session.push(packet_frame(item.encode()))


async def upgrade(socket: AsyncSocket, ws: WebSocketResponse) -> bool:
    """Engine.IO's polling-to-WebSocket upgrade handshake; True once the client has switched."""
    socket.upgrading = True
    try:
        probe = await ws.receive()
        if probe.type is not WSMsgType.TEXT or probe.data != "2probe":
            return False
        await ws.send_str("3probe")
        await socket.queue.put(eio_packet.Packet(eio_packet.NOOP))  # ends the pending long-poll
        confirm = await ws.receive()
        if confirm.type is not WSMsgType.TEXT or confirm.data != "5":
            return False
        socket.upgraded = True
        return True
    finally:
        socket.upgrading = False


class PollingSession(AsyncSocket):  # type: ignore[misc]  # untyped base class
    """An Engine.IO socket on long-polling: each poll answers at most ``Payload.max_decode_packets``.

    Engine.IO's server drains its whole queue into one response, but python-engineio's client refuses a
    payload of more than ``max_decode_packets`` (16) packets and drops the connection: a busy room would
    disconnect every python client on long-polling. The rest waits for the next poll, in order.
    """

    async def poll(self) -> list[eio_packet.Packet]:
        try:
            first = await asyncio.wait_for(
                self.queue.get(), self.server.ping_interval + self.server.ping_timeout
            )
            self.queue.task_done()
        except (TimeoutError, asyncio.CancelledError):
            raise eio_exceptions.QueueEmpty() from None
        if first is None:
            return []
        packets = [first]
        while len(packets) < eio_payload.Payload.max_decode_packets and not self.queue.empty():
            item = self.queue.get_nowait()
            self.queue.task_done()
            if item is None:
                self.queue.put_nowait(None)
                break
            packets.append(item)
        return packets


class Pinger:
    """Sends Engine.IO PINGs for every :class:`WebSocketSession` of a server, spread over the interval."""

    def __init__(self, interval_seconds: float) -> None:
        self._buckets: list[set[WebSocketSession]] = [
            set() for _ in range(max(1, round(interval_seconds / PING_TICK_SECONDS)))
        ]
        self._next = 0
        self._task: asyncio.Task[None] | None = None

    def add(self, session: WebSocketSession) -> None:
        self._buckets[self._next % len(self._buckets)].add(session)
        self._next += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, session: WebSocketSession) -> None:
        for bucket in self._buckets:
            if session in bucket:
                bucket.remove(session)
                return

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        turn = 0
        while True:
            await asyncio.sleep(PING_TICK_SECONDS)
            now = time.time()
            for session in self._buckets[turn]:
                if session.last_ping is None and not session.closing:
                    session.last_ping = now
                    session.push(PING_FRAME)
            turn = (turn + 1) % len(self._buckets)


def websocket_class(
    *,
    compress: bool,
    pinger: Pinger,
    max_backlog: Callable[[], int],
    report_overflow: OverflowReport,
) -> type:
    """Engine.IO's aiohttp WebSocket wrapper for one server: negotiates compression only when asked, and
    serves its Engine.IO socket as a :class:`WebSocketSession`."""

    class ChatWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]  # untyped base class
        async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
            request = environ["aiohttp.request"]
            self._sock = WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=compress)
            await self._sock.prepare(request)
            # The handler is the bound _websocket_handler of the Engine.IO socket being served.
            socket: AsyncSocket = self.handler.__self__
            socket.chatio_ws = self
            if socket.connected:
                if not await upgrade(socket, self._sock):
                    return self._sock
            else:
                socket.connected = True
                socket.upgraded = True
            adopt(socket, self, max_backlog=max_backlog(), report_overflow=report_overflow)
            session: WebSocketSession = socket
            await session.serve(pinger)
            return self._sock

    return ChatWebSocket
