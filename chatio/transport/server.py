"""``ChatServer``: python-socketio's ``AsyncServer`` with chatio's hooks into its internals."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, Final

import orjson
import socketio
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket
from socketio import packet as sio_packet

from chatio.rfc6455 import GOING_AWAY
from chatio.transport.eio import (
    Hub,
    OverflowListener,
    Pinger,
    PollingSession,
    WebSocketSession,
    websocket_class,
)
from chatio.transport.frames import text_frame
from chatio.transport.wire import Wire

ACK_REQUESTED: contextvars.ContextVar[bool] = contextvars.ContextVar("chatio_ack_requested", default=True)

#: How long an evicted socket gets to read its notice before its TCP connection is aborted.
EVICT_GRACE_SECONDS: Final = 5.0


class JsonCodec:
    """orjson behind the ``dumps``/``loads`` interface python-socketio and python-engineio expect."""

    @staticmethod
    def dumps(obj: Any, **_kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(text: str | bytes, **_kwargs: Any) -> Any:
        return orjson.loads(text)


class ChatServer(socketio.AsyncServer):  # type: ignore[misc]  # untyped base class
    """python-socketio's server with the hooks described in the package docstring."""

    def __init__(self, *, websocket_compression: bool, **kwargs: Any) -> None:
        super().__init__(json=JsonCodec, **kwargs)
        #: Packets a socket may have waiting (0: no bound) and who hears of one that reaches it.
        self.max_queue = 0
        self.on_overflow: OverflowListener | None = None
        self.pinger = Pinger(self.eio.ping_interval)
        drivers = dict(self.eio._async)
        self.hub = Hub(
            pinger=self.pinger,
            compress=websocket_compression,
            max_backlog=lambda: self.max_queue,
            report_overflow=self.report_overflow,
            receive_event=self.receive_event,
        )
        drivers["websocket"] = websocket_class(self.hub)
        self.eio._async = drivers

    # --- the slow-consumer bound for sockets on Engine.IO's queue (long-polling) --------------------------

    def overflowing(self, eio_sid: str, socket: Any) -> bool:
        """True when a queued ``socket`` has ``max_queue`` packets waiting: drop the packet.

        ``on_overflow`` is told once per socket. WebSocket sessions apply the same bound to their backlog.
        """
        if not self.max_queue or socket.queue.qsize() < self.max_queue:
            return False
        self.report_overflow(socket)
        return True

    def report_overflow(self, socket: Any) -> None:
        """Tell ``on_overflow`` that ``socket`` reached its bound: once per socket, whatever its transport."""
        if not getattr(socket, "chatio_overflowed", False):
            socket.chatio_overflowed = True
            if self.on_overflow is not None:
                self.on_overflow(socket.sid)

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and self.overflowing(eio_sid, socket):
            return
        await super()._send_packet(eio_sid, pkt)

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and self.overflowing(eio_sid, socket):
            return
        await super()._send_eio_packet(eio_sid, eio_pkt)

    async def evict(self, eio_sid: str, event: str, data: Any, *, grace_seconds: float | None = None) -> None:
        """Drop what waits for the socket, send it ``event`` and close it (its client may reconnect).

        The socket's Socket.IO disconnect handlers run as for any closed transport. A client that does not
        read the notice within ``grace_seconds`` has its TCP connection aborted.
        """
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.closed or socket.closing:
            return
        encoded = f"{sio_packet.EVENT}{orjson.dumps([event, data]).decode()}"
        if isinstance(socket, WebSocketSession):
            socket.drop_backlog()
            socket.push(text_frame(f"{eio_packet.MESSAGE}{encoded}".encode()))
        else:
            while not socket.queue.empty():
                socket.queue.get_nowait()
                socket.queue.task_done()
            socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, encoded))
        await socket.close(wait=False, reason=self.eio.reason.SERVER_DISCONNECT)
        if not isinstance(socket, WebSocketSession):
            socket.queue.put_nowait(None)  # a long-poll gets the notice, or the ping timeout ends it
            return
        wire: Wire = socket.wire
        grace = EVICT_GRACE_SECONDS if grace_seconds is None else grace_seconds
        deadline = asyncio.get_running_loop().time() + grace
        while not wire.lost:
            if asyncio.get_running_loop().time() >= deadline:
                wire.abort()
                return
            await asyncio.sleep(0.1)

    # --- events, acks, disconnects and shutdown -------------------------------------------------------------

    async def receive_event(self, eio_sid: str, text: str) -> bool:
        """Handle ``42[<id>][...]``, an EVENT for ``/`` in an Engine.IO MESSAGE, straight from its text.

        python-engineio and python-socketio would build an Engine.IO packet, trigger the message handler,
        build a Socket.IO packet and decode it; this decodes the common shape once and calls
        ``_handle_event`` as ``_handle_eio_message`` would. False for anything else (another namespace,
        binary attachments, a malformed packet): the ordinary path then takes it, errors included.
        """
        if eio_sid in self._binary_packet:
            return False
        end, size = 2, len(text)
        while end < size and end < 24 and text[end].isdigit():
            end += 1
        if end == size or text[end] != "[":
            return False
        try:
            args = orjson.loads(text[end:])
        except orjson.JSONDecodeError:
            return False
        if not args or type(args) is not list or type(args[0]) is not str:
            return False
        await self._handle_event(eio_sid, "/", int(text[2:end]) if end > 2 else None, args)
        return True

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: int | None
    ) -> None:
        # python-socketio 5.18.1's body, with the contextvar around the handler and the ack written as one
        # finished frame when it can be (no Packet objects, no second encoding, no Engine.IO send path).
        token = ACK_REQUESTED.set(id is not None)
        try:
            result = await server._trigger_event(data[0], namespace, sid, *data[1:])
        finally:
            ACK_REQUESTED.reset(token)
        if result is self.not_handled or id is None:
            return
        args = [] if result is None else list(result) if isinstance(result, tuple) else [result]
        socket = self.eio.sockets.get(eio_sid)
        if namespace == "/" and type(socket) is WebSocketSession:
            try:
                body = orjson.dumps(args)
            except TypeError:  # binary attachments and the like: python-socketio knows how
                pass
            else:
                socket.push(text_frame(b"43%d%b" % (id, body)))
                return
        await server._send_packet(
            eio_sid, self.packet_class(sio_packet.ACK, namespace=namespace, id=id, data=args)
        )

    async def _handle_eio_connect(self, eio_sid: str, environ: Any) -> Any:
        # A session that starts on long-polling answers its polls in pieces a python client accepts;
        # a WebSocket (from the start or after the upgrade) becomes a WebSocketSession instead.
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and type(socket) is AsyncSocket and not socket.upgraded:
            if "transport=websocket" in environ.get("QUERY_STRING", "").split("&"):
                # Engine.IO would start a task that sleeps through the first ping interval; the
                # server's Pinger pings this socket once its WebSocket is served.
                socket.last_ping = None
            else:
                socket.__class__ = PollingSession
        return await super()._handle_eio_connect(eio_sid, client_environ(environ))

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        await super()._handle_eio_disconnect(eio_sid, reason)
        # Engine.IO does not answer a pending long-poll when the client closes the session, so the
        # request would hang until the ping window ends; an end-of-queue marker releases it now. A
        # WebSocket still probing for an upgrade has no session left to move to: it is closed.
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and not isinstance(socket, WebSocketSession) and not socket.upgraded:
            socket.queue.put_nowait(None)
            probing: Wire | None = getattr(socket, "wire", None)
            if probing is not None:
                probing.close(GOING_AWAY, "the session ended")

    async def close_transports(self, grace_seconds: float = 1.0) -> None:
        """End every Engine.IO session and close its WebSocket (1001, going away).

        What is already on its way (a ``server_shutdown`` notice, say) gets up to ``grace_seconds`` to reach
        its clients. Engine.IO's own ``disconnect()`` would instead wait until each client has read its
        CLOSE packet, which a vanished long-polling client never does. Clients see a transport close, not
        a server-side namespace disconnect, so socket.io clients reconnect by themselves.
        """
        self.pinger.stop()
        self.hub.shutting_down = True
        sockets = [socket for socket in self.eio.sockets.values() if not socket.closed]
        for socket in sockets:
            await socket.close(wait=False, reason=self.eio.reason.SERVER_DISCONNECT)
        deadline = asyncio.get_running_loop().time() + grace_seconds
        while any(_still_sending(socket) for socket in sockets):
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.01)
        # Each closed session has closed its WebSocket (1001: the hub is shutting down), and one caught
        # mid-upgrade its probing WebSocket (_handle_eio_disconnect).
        for socket in sockets:
            self.eio.sockets.pop(socket.sid, None)


def client_environ(environ: dict[str, Any]) -> dict[str, Any]:
    """What a Socket.IO session keeps of the request that opened it: the client's address.

    python-socketio keeps the environ of the first request for the session's lifetime, and Engine.IO's
    environ holds aiohttp's request (and with it the parsed headers and the HTTP protocol object), with
    ``REMOTE_ADDR`` always ``127.0.0.1``. The session keeps the TCP peer's address as ``REMOTE_ADDR`` and,
    when there is one, ``HTTP_X_FORWARDED_FOR``; the connect handlers get this.
    """
    request = environ.get("aiohttp.request")
    peer = request.remote if request is not None else environ.get("REMOTE_ADDR")
    kept: dict[str, Any] = {"REMOTE_ADDR": peer or "unknown"}
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if forwarded:
        kept["HTTP_X_FORWARDED_FOR"] = forwarded
    return kept


def _still_sending(socket: Any) -> bool:
    """True while a socket has packets waiting that its client can still receive."""
    if isinstance(socket, WebSocketSession):
        return socket.sending
    return bool(socket.queue._unfinished_tasks)
