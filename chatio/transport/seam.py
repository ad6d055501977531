"""Every use of another package's private API, in one place; ``tests/transport/test_seam.py`` pins each.

python-socketio (5.x):

* ``AsyncServer._engineio_server_class()`` returns chatio's :class:`~chatio.transport.engine.EngineServer`
  (with chatio's options bound): the documented way a subclass chooses its Engine.IO server;
* ``AsyncServer._handle_event(eio_sid, namespace, id, data)`` is overridden so that the events of one
  connection run one after another (:meth:`~chatio.transport.eio.Session.in_order`) while every other
  python-socketio feature, ``call()`` included, works (``async_handlers`` stays on); each event runs with
  ``ACK_REQUESTED`` (did the client ask for an ack) and ``CLIENT_EVENT`` (its name, so that a client's
  event named ``connect`` or ``disconnect`` is not taken for python-socketio's lifecycle call) set;
* ``_trigger_event``, ``_send_packet`` and ``_handle_eio_message`` are called, and ``_binary_packet`` (the
  binary packets waiting for attachments) is read.

aiohttp (3.x): :func:`take_over` moves a WebSocket's TCP connection from aiohttp's request handler to a
:class:`~chatio.transport.wire.Wire`.

Nothing else in chatio touches those packages' internals; :mod:`chatio.transport.fanout` overrides the
pub/sub hooks python-socketio's own Redis, Kafka and AMQP managers override (``_publish``, ``_listen``,
``_handle_emit``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from typing import Any

import orjson
import socketio
from aiohttp import web
from socketio import packet as sio_packet

#: False while a command runs whose client asked for no acknowledgement.
ACK_REQUESTED: contextvars.ContextVar[bool] = contextvars.ContextVar("chatio_ack_requested", default=True)
#: The name of the client event being dispatched; None outside one. python-socketio hands a client's event
#: named ``connect`` or ``disconnect`` to the same ``trigger_event`` as its own lifecycle calls: this tells
#: them apart.
CLIENT_EVENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("chatio_client_event", default=None)


class SocketIOSeam(socketio.AsyncServer):  # type: ignore[misc]  # untyped base class
    """python-socketio's ``AsyncServer`` on chatio's Engine.IO server, with its events in order."""

    def __init__(self, engine_class: Any, engine_options: dict[str, Any], **kwargs: Any) -> None:
        self._engine_factory = functools.partial(engine_class, **engine_options)
        super().__init__(**kwargs)
        self.eio.on("disconnect", self.end_session)

    def _engineio_server_class(self) -> Any:
        return self._engine_factory

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, id: int | None, data: list[Any]
    ) -> None:
        await self.handle_event(eio_sid, namespace or "/", id, data)

    async def handle_event(self, eio_sid: str, namespace: str, id: int | None, data: list[Any]) -> None:
        """Queue an event of a connected client behind that connection's earlier ones."""
        session = self.eio.sessions.get(eio_sid)
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if session is None or sid is None or not self.manager.is_connected(sid, namespace):
            raise ValueError(f"an event for namespace {namespace[:64]!r}, which the client has not joined")
        session.in_order(self._run_event(session, sid, eio_sid, data, namespace, id))

    async def _run_event(
        self, session: Any, sid: str, eio_sid: str, data: list[Any], namespace: str, id: int | None
    ) -> None:
        if not self.manager.is_connected(sid, namespace):
            return
        token = ACK_REQUESTED.set(id is not None)
        named = CLIENT_EVENT.set(data[0])
        try:
            result = await self._trigger_event(data[0], namespace, sid, *data[1:])
        finally:
            CLIENT_EVENT.reset(named)
            ACK_REQUESTED.reset(token)
        if result is self.not_handled or id is None:
            return
        args = [] if result is None else list(result) if isinstance(result, tuple) else [result]
        if namespace == "/":
            try:
                body = orjson.dumps(args)
            except TypeError:  # binary data and the like: python-socketio knows how
                pass
            else:
                session.send_text(b"3%d%b" % (id, body))
                return
        await self._send_packet(
            eio_sid, self.packet_class(sio_packet.ACK, namespace=namespace, id=id, data=args)
        )

    async def handle_packet(self, eio_sid: str, data: str | bytes) -> None:
        """python-socketio's handling of one Socket.IO packet (or binary attachment)."""
        await self._handle_eio_message(eio_sid, data)

    async def end_session(self, eio_sid: str, reason: str) -> None:
        """An Engine.IO session ended: its Socket.IO namespaces disconnect (python-socketio's handling)."""
        self.session_ending(eio_sid)
        await self._handle_eio_disconnect(eio_sid, reason)

    def session_ending(self, eio_sid: str) -> None:
        """Told first when an Engine.IO session ends."""

    def awaits_attachments(self, eio_sid: str) -> bool:
        """True while a binary packet of the session waits for its attachments."""
        return eio_sid in self._binary_packet


def take_over(request: web.BaseRequest, wire: asyncio.Protocol, answer: bytes) -> bytes:
    """Move the request's TCP connection from aiohttp to ``wire`` and send ``answer``.

    Returns the bytes that arrived after the request (for ``wire.data_received`` once its receiver is
    ready). aiohttp 3.x's request handler keeps the connection in its ``transport``, the bytes after an
    upgrade request in ``_message_tail``, and its server lists it until its request task ends; with the
    transport taken, the handler's task returns ``Detached`` and aiohttp forgets the connection without
    closing it.
    """
    handler: Any = request.protocol
    transport = request.transport
    if transport is None or handler is None:
        raise ConnectionResetError("the connection closed during the handshake")
    tail: bytes = handler._message_tail
    handler._message_tail = b""
    paused = handler._reading_paused
    handler.transport = None
    handler.keep_alive(False)  # cancels its keep-alive timer, which would hold it for 75 s
    if handler._manager is not None:
        handler._manager.connection_lost(handler)
    wire.transport = transport  # type: ignore[attr-defined]
    transport.set_protocol(wire)
    transport.write(answer)
    if paused:
        transport.resume_reading()
    return tail
