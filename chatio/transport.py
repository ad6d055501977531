"""The one module that touches python-socketio's and python-engineio's internals.

Both packages are pinned exactly in pyproject.toml because of what this module relies on; the tests in
``tests/test_transport.py`` pin each assumption so that an upgrade that breaks one fails loudly.

* ``AsyncServer._handle_event_internal(server, sid, eio_sid, data, namespace, id)`` is wrapped to record
  whether the client asked for an acknowledgement, so that a failed command without one can still be
  reported (``command_error``).
* ``AsyncServer._handle_eio_disconnect(eio_sid, reason)`` is extended to release a pending long-poll
  request when its session ends, which Engine.IO leaves hanging for the whole ping window.
* ``engineio.AsyncServer._async['websocket']``, the aiohttp WebSocket wrapper, is replaced per server so
  that per-message deflate is negotiated only when ``CHATIO_WEBSOCKET_COMPRESSION`` is on (aiohttp offers
  it by default, which costs about 40% more CPU per delivery); so that shutdown can close every WebSocket
  itself (Engine.IO's own close waits for the client to hang up); and so that the broadcast fast path can
  reach the socket's aiohttp writer.
* **The broadcast fast path** (:class:`FastManager`). python-socketio delivers a room emit by creating one
  asyncio task per recipient, which puts the packet on the Engine.IO socket's queue, which wakes a writer
  task that encodes the packet again and arms a timer (``wait_for``) for its next poll: about 70 us of
  Python per delivery. The fast path encodes the packet once (orjson), builds the finished WebSocket text
  frame once, and writes those same bytes to every recipient's transport.

  Per-connection order is kept: a frame is written directly only when nothing of that connection is in
  flight on the ordinary path, that is, its Engine.IO queue has no unfinished item
  (``queue._unfinished_tasks == 0``: a packet taken by the writer stays unfinished until the writer has it
  in hand, and from there to the transport the writer does not yield unless it is blocked on a drain,
  which :attr:`ChatWebSocket.sending` shows). Otherwise, and for long-polling, a connection that is
  upgrading, negotiated compression or has more than ``DIRECT_BUFFER_LIMIT`` bytes unsent, the packet is
  put on the Engine.IO queue in order, still without a task per recipient.
* **The slow-consumer bound** (``CHATIO_SLOW_CONSUMER_MAX_QUEUE``). Engine.IO's per-socket queue is an
  unbounded ``asyncio.Queue``: a client that stops reading would make it, and the server's memory, grow
  forever. Every packet bound for a socket passes :meth:`ChatServer.overflowing` (the fast path here,
  everything else in ``_send_packet``/``_send_eio_packet``); at ``max_queue`` waiting packets the packet is
  dropped and ``on_overflow(eio_sid)`` is told once, which evicts the socket (:meth:`ChatServer.evict`).
"""

from __future__ import annotations

import asyncio
import contextvars
import struct
import weakref
from collections.abc import Callable
from typing import Any, Final

import orjson
import socketio
from aiohttp.web import WebSocketResponse
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp
from socketio import packet as sio_packet

ACK_REQUESTED: contextvars.ContextVar[bool] = contextvars.ContextVar("chatio_ack_requested", default=True)

#: Unsent bytes above which a connection stops getting direct writes and waits in its queue instead.
DIRECT_BUFFER_LIMIT: Final = 256 * 1024
#: How long an evicted socket gets to read its notice before its TCP connection is aborted.
EVICT_GRACE_SECONDS: Final = 5.0

DeliveryListener = Callable[[str, int], None]


class JsonCodec:
    """orjson behind the ``dumps``/``loads`` interface python-socketio and python-engineio expect."""

    @staticmethod
    def dumps(obj: Any, **_kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(text: str | bytes, **_kwargs: Any) -> Any:
        return orjson.loads(text)


class ChatServer(socketio.AsyncServer):  # type: ignore[misc]  # untyped base class
    """python-socketio's server with the hooks described in this module's docstring."""

    def __init__(self, *, websocket_compression: bool, **kwargs: Any) -> None:
        super().__init__(json=JsonCodec, **kwargs)
        self.websockets: weakref.WeakSet[WebSocketResponse] = weakref.WeakSet()
        drivers = dict(self.eio._async)
        drivers["websocket"] = _websocket_class(websocket_compression, self.websockets)
        self.eio._async = drivers
        #: Packets a socket may have waiting (0: no bound) and who hears of one that reaches it.
        self.max_queue = 0
        self.on_overflow: Callable[[str], None] | None = None

    def overflowing(self, eio_sid: str, socket: Any) -> bool:
        """True when ``socket`` has ``max_queue`` packets waiting: drop the packet. ``on_overflow`` is told
        once per socket."""
        if not self.max_queue or socket.queue.qsize() < self.max_queue:
            return False
        if not getattr(socket, "chatio_overflowed", False):
            socket.chatio_overflowed = True
            if self.on_overflow is not None:
                self.on_overflow(eio_sid)
        return True

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
        while not socket.queue.empty():
            socket.queue.get_nowait()
            socket.queue.task_done()
        notice = f"{sio_packet.EVENT}{orjson.dumps([event, data]).decode()}"
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, notice))
        await socket.close(wait=False, reason=self.eio.reason.SERVER_DISCONNECT)
        socket.queue.put_nowait(None)  # the writer sends the notice and CLOSE, then closes the WebSocket
        chat_ws = getattr(socket, "chatio_ws", None)
        writer = None if chat_ws is None else chat_ws._sock._writer
        if writer is None:  # long-polling: the next poll gets the notice, or the ping timeout ends it
            return
        grace = EVICT_GRACE_SECONDS if grace_seconds is None else grace_seconds
        deadline = asyncio.get_running_loop().time() + grace
        while not writer.transport.is_closing():
            if asyncio.get_running_loop().time() >= deadline:
                writer.transport.abort()
                return
            await asyncio.sleep(0.1)

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: int | None
    ) -> None:
        token = ACK_REQUESTED.set(id is not None)
        try:
            await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
        finally:
            ACK_REQUESTED.reset(token)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        await super()._handle_eio_disconnect(eio_sid, reason)
        # Engine.IO does not answer a pending long-poll when the client closes the session, so the
        # request would hang until the ping window ends; an end-of-queue marker releases it now.
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and not socket.upgraded:
            socket.queue.put_nowait(None)

    async def close_transports(self, grace_seconds: float = 1.0) -> None:
        """End every Engine.IO session, then close every WebSocket with 1001 (going away).

        Packets already queued (a ``server_shutdown`` notice, say) get up to ``grace_seconds`` to reach
        their clients. Engine.IO's own ``disconnect()`` would instead wait until each client has read its
        CLOSE packet, which a vanished long-polling client never does. Clients see a transport close, not
        a server-side namespace disconnect, so socket.io clients reconnect by themselves.
        """
        sockets = [(eio_sid, socket) for eio_sid, socket in self.eio.sockets.items() if not socket.closed]
        for _eio_sid, socket in sockets:
            await socket.close(wait=False, reason=self.eio.reason.SERVER_DISCONNECT)
        grace = EVICT_GRACE_SECONDS if grace_seconds is None else grace_seconds
        deadline = asyncio.get_running_loop().time() + grace
        while any(_still_sending(socket) for _, socket in sockets):
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.01)
        for eio_sid, _socket in sockets:
            self.eio.sockets.pop(eio_sid, None)
        open_sockets = [ws for ws in self.websockets if not ws.closed]
        if open_sockets:
            await asyncio.gather(
                *(ws.close(code=1001, message=b"server shutdown") for ws in open_sockets),
                return_exceptions=True,
            )


def _still_sending(socket: Any) -> bool:
    """True while an Engine.IO socket has queued packets that its client can still receive."""
    if not socket.queue._unfinished_tasks:
        return False
    chat_ws = getattr(socket, "chatio_ws", None)
    return chat_ws is None or not chat_ws._sock.closed


def _websocket_class(compress: bool, registry: weakref.WeakSet[WebSocketResponse]) -> type:
    class ChatWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]  # untyped base class
        """Engine.IO's aiohttp WebSocket wrapper, registered on its Engine.IO socket as ``chatio_ws``."""

        sending = 0

        async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
            request = environ["aiohttp.request"]
            self._sock = WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=compress)
            registry.add(self._sock)
            await self._sock.prepare(request)
            self.environ = environ
            # The handler is the bound _websocket_handler of the Engine.IO socket being served.
            self.handler.__self__.chatio_ws = self
            await self.handler(self)
            return self._sock

        async def send(self, message: str | bytes) -> None:
            self.sending += 1
            try:
                await super().send(message)
            finally:
                self.sending -= 1

    return ChatWebSocket


def text_frame(payload: bytes) -> bytes:
    """A complete, unmasked, final WebSocket text frame (RFC 6455 section 5.2) carrying ``payload``."""
    size = len(payload)
    if size < 126:
        return struct.pack("!BB", 0x81, size) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def _write_direct(socket: Any, frame: bytes) -> bool:
    """Write ``frame`` to ``socket``'s transport if that keeps its order; False to use the queue."""
    chat_ws = getattr(socket, "chatio_ws", None)
    if chat_ws is None or chat_ws.sending or not socket.upgraded or socket.upgrading:
        return False
    if socket.queue._unfinished_tasks:
        return False
    writer = chat_ws._sock._writer
    if writer is None or writer.compress:
        return False
    transport = writer.transport
    if transport.is_closing() or transport.get_write_buffer_size() > DIRECT_BUFFER_LIMIT:
        return False
    transport.write(frame)
    return True


class FastManager(socketio.AsyncManager):  # type: ignore[misc]  # untyped base class
    """The in-process manager with the fast path; also the local-delivery half of :class:`FastRedisManager`.

    ``on_delivered(event, count)`` is told how many sockets on this process each emit reached.
    """

    def __init__(self, *, fast: bool = True, on_delivered: DeliveryListener | None = None) -> None:
        super().__init__()
        self.fast = fast
        self.on_delivered = on_delivered

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        if not self.fast or callback is not None or namespace != "/" or namespace not in self.rooms:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
            self._count(
                event, sum(1 for sid, _eio in self.get_participants(namespace, room) if sid not in skip)
            )
            return
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        try:
            encoded = orjson.dumps([event, *args])
        except TypeError:  # binary attachments and the like: python-socketio knows how
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, **kwargs)
            return
        # Engine.IO MESSAGE (4) carrying a Socket.IO EVENT (2) for the default namespace.
        frame = text_frame(b"42" + encoded)
        queued: eio_packet.Packet | None = None
        sockets = self.server.eio.sockets
        delivered = 0
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed or socket.closing:
                continue
            delivered += 1
            if not _write_direct(socket, frame):
                if self.server.overflowing(eio_sid, socket):
                    continue
                if queued is None:
                    queued = eio_packet.Packet(eio_packet.MESSAGE, f"{sio_packet.EVENT}{encoded.decode()}")
                socket.queue.put_nowait(queued)
        self._count(event, delivered)

    def _count(self, event: str, delivered: int) -> None:
        if self.on_delivered is not None and delivered:
            self.on_delivered(event, delivered)


class FastRedisManager(socketio.AsyncRedisManager, FastManager):  # type: ignore[misc]  # untyped base
    """``AsyncRedisManager`` whose local delivery (``super().emit`` in its listener) is the fast path.

    The method resolution order puts :class:`FastManager` between ``AsyncPubSubManager`` and
    ``AsyncManager``, so messages from Redis reach local sockets through :meth:`FastManager.emit`.
    """

    def __init__(
        self, url: str, *, fast: bool = True, on_delivered: DeliveryListener | None = None, **kwargs: Any
    ) -> None:
        socketio.AsyncRedisManager.__init__(self, url, **kwargs)
        self.fast = fast
        self.on_delivered = on_delivered
