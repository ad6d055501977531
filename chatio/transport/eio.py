"""Engine.IO sessions served by a :class:`~chatio.transport.wire.Wire`, and a shared pinger.

python-engineio serves a WebSocket from inside aiohttp's request handler with, per connection, a reader
that wraps every read in a new task and a timer, a writer task that wakes on an ``asyncio.Queue``, and a
ping task that sleeps through each ping interval; aiohttp keeps the request, its headers, its parser and
two more tasks alive meanwhile. At 10,000 idle connections those objects are most of the server's memory
and most of the garbage collector's work.

:class:`WebSocketSession` replaces that, for every Engine.IO socket whose transport is (or becomes, after
the polling-to-WebSocket upgrade) a WebSocket:

* **The connection** is a :class:`~chatio.transport.wire.Wire` that took the TCP transport over from
  aiohttp right after the handshake: the request and everything of aiohttp's is freed.
* **Reading**: the wire hands each message to the session in order (``on_message``), from a task that
  exists only while messages wait; the ping timeout is enforced by Engine.IO's service task, which
  already watches every socket.
* **Writing** is synchronous: an outgoing packet becomes a finished frame written at once, in call order,
  or after the wire's backlog when the client reads slowly; past ``CHATIO_SLOW_CONSUMER_MAX_QUEUE`` frames
  the socket is a slow consumer and the server is told (``report_overflow``).
* **Pinging** is done by one :class:`Pinger` per server, which walks the sockets in buckets so that the
  pings of 10,000 connections are spread over the interval instead of fired at once.

The Engine.IO socket object is kept (python-socketio and python-engineio look it up by sid and call its
``send``, ``close``, ``receive`` and ``check_ping_timeout``); its class is switched to
:class:`WebSocketSession` when its WebSocket takes over, and its queue is replaced by :data:`NO_QUEUE`.
Its only new attributes are ``wire`` and ``hub`` (what every session of the server shares).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from engineio.async_drivers import aiohttp as eio_aiohttp
from engineio.async_socket import AsyncSocket

from chatio.rfc6455 import GOING_AWAY
from chatio.transport.frames import PING_FRAME, packet_frame, text_frame
from chatio.transport.wire import Detached, Wire, handshake, take_over

log = logging.getLogger(__name__)

#: How often the pinger wakes; each wake pings one bucket of sockets.
PING_TICK_SECONDS: Final = 0.25

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


@dataclasses.dataclass(slots=True)
class Hub:
    """What every WebSocket session of one server shares."""

    pinger: Pinger
    compress: bool
    #: Frames a session's backlog may hold (0: no bound), read when a WebSocket opens.
    max_backlog: Callable[[], int]
    report_overflow: OverflowReport
    #: ``receive_event(eio_sid, text)``: handles a Socket.IO event message directly; False: not that shape.
    receive_event: Callable[[str, str], Awaitable[bool]]
    #: Set when the server shuts down: sessions then close their WebSocket with 1001 (going away).
    shutting_down: bool = False


class WebSocketSession(AsyncSocket):  # type: ignore[misc]  # untyped base class
    """An Engine.IO socket served by a :class:`Wire`; see the module docstring. Built by :func:`adopt`."""

    wire: Wire
    hub: Hub
    last_ping: float | None

    # --- writing ---------------------------------------------------------------------------------------

    def push(self, frame: bytes) -> bool:
        """Write ``frame`` now, or after the frames already waiting. False when it was dropped."""
        if self.closed:
            return False
        return self.wire.send(frame)

    async def send(self, pkt: eio_packet.Packet) -> None:
        self.push(packet_frame(pkt.encode()))

    def drop_backlog(self) -> None:
        """Forget the frames waiting for this socket (an evicted slow consumer will not read them)."""
        self.wire.drop_backlog()

    @property
    def sending(self) -> bool:
        """True while frames wait for a client that can still receive them."""
        return self.wire.sending

    # --- Engine.IO hooks ---------------------------------------------------------------------------------

    def schedule_ping(self) -> None:
        # A PONG arrived: the pinger sends the next PING in this socket's turn.
        self.last_ping = None

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        await super().close(wait=False, abort=abort, reason=reason)
        self.hub.pinger.discard(self)
        if self.hub.shutting_down:
            self.wire.close(GOING_AWAY, "server shutdown")
        else:
            self.wire.close()

    # --- the wire's receiver -----------------------------------------------------------------------------

    async def on_message(self, data: str | bytes) -> None:
        if type(data) is str and data.startswith("42") and await self.hub.receive_event(self.sid, data):
            return
        try:
            await self.receive(eio_packet.Packet(encoded_packet=data))
        except eio_exceptions.SocketIsClosedError:
            return
        except (ValueError, KeyError, IndexError, TypeError, eio_exceptions.UnknownPacketError) as exc:
            # Garbage from a client: report the first per session, ignore the rest (no log flood). The
            # count is set only on a session that sent some: most never do.
            bad = getattr(self, "bad_packets", 0)
            if not bad:
                log.warning("session %s sent a malformed Engine.IO packet: %r", self.sid, exc)
            self.bad_packets = bad + 1

    async def on_lost(self) -> None:
        if not self.closed:
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
        if self.server.sockets.get(self.sid) is self:
            del self.server.sockets[self.sid]

    def on_overflow(self) -> None:
        self.hub.report_overflow(self)


def adopt(socket: AsyncSocket, wire: Wire, hub: Hub) -> WebSocketSession:
    """Make ``socket`` a :class:`WebSocketSession` on ``wire``, sending what its queue held first."""
    waiting = []
    while not socket.queue.empty():
        item = socket.queue.get_nowait()
        socket.queue.task_done()
        if item is not None:
            waiting.append(item)
    socket.__class__ = WebSocketSession
    session: WebSocketSession = socket
    session.wire = wire
    session.hub = hub
    session.queue = NO_QUEUE
    wire.receiver = session
    for item in waiting:
        session.push(packet_frame(item.encode()))
    hub.pinger.add(session)
    return session


class Probe:
    """The receiver of a WebSocket that upgrades a long-polling session (Engine.IO's probe handshake).

    The client sends ``2probe`` and gets ``3probe``; the pending long-poll is answered with a NOOP; the
    client sends ``5`` and the session moves to the WebSocket (:func:`adopt`). Anything else ends the
    WebSocket and the session stays on long-polling.
    """

    __slots__ = ("hub", "probed", "socket", "wire")

    def __init__(self, socket: AsyncSocket, wire: Wire, hub: Hub) -> None:
        self.socket = socket
        self.wire = wire
        self.hub = hub
        self.probed = False

    async def on_message(self, data: str | bytes) -> None:
        socket, wire = self.socket, self.wire
        if not self.probed and data == "2probe" and not socket.closed:
            self.probed = True
            wire.send(text_frame(b"3probe"))
            socket.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))  # ends the pending long-poll
        elif self.probed and data == "5" and not socket.closed:
            socket.upgraded = True
            socket.upgrading = False
            adopt(socket, wire, self.hub)
        else:
            self._give_up()
            wire.close()

    async def on_lost(self) -> None:
        self._give_up()

    def on_overflow(self) -> None:
        return None

    def _give_up(self) -> None:
        socket = self.socket
        if not socket.upgraded:
            socket.upgrading = False
            if getattr(socket, "wire", None) is self.wire:
                del socket.wire


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


def websocket_class(hub: Hub) -> type:
    """Engine.IO's aiohttp WebSocket wrapper for one server: the handshake, then a :class:`Wire`."""

    class ChatWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]  # untyped base class
        async def __call__(self, environ: dict[str, Any]) -> web.StreamResponse:
            request = environ["aiohttp.request"]
            # The handler is the bound _websocket_handler of the Engine.IO socket being served.
            socket: AsyncSocket = self.handler.__self__
            answer = handshake(request, compress=hub.compress)
            if isinstance(answer, web.StreamResponse):
                await self._abandon(socket)
                return answer
            if socket.closed:
                return web.Response(status=400, text="the session has ended")
            response, deflate = answer
            wire = Wire(
                max_size=self.server.max_http_buffer_size,
                max_backlog=hub.max_backlog(),
                deflate=deflate,
            )
            try:
                tail = take_over(request, wire, response)
            except ConnectionResetError:  # the client left during the handshake
                await self._abandon(socket)
                return Detached()
            # No data reaches the wire before the next turn of the event loop: its receiver is set first.
            if socket.connected:  # a long-polling session upgrading
                wire.receiver = Probe(socket, wire, hub)
                socket.upgrading = True
                socket.wire = wire  # so that shutdown can close it mid-upgrade
            else:
                socket.connected = True
                socket.upgraded = True
                adopt(socket, wire, hub)
            if tail:
                wire.data_received(tail)
            return Detached()

        async def _abandon(self, socket: AsyncSocket) -> None:
            """End a session whose first WebSocket never opened (an upgrading one stays on long-polling)."""
            if not socket.connected:
                await socket.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
                self.server.sockets.pop(socket.sid, None)

    return ChatWebSocket
