"""``ChatServer``: python-socketio's ``AsyncServer`` on chatio's Engine.IO server.

What it adds to python-socketio, all through :mod:`chatio.transport.seam`: every packet from a client is
checked first (:mod:`chatio.transport.sio`) and a malformed one closes its connection; binary attachments
are bounded; the common event shape (``42[...]``) is decoded once; slow consumers are evicted; shutdown
ends every transport so that clients reconnect elsewhere.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import orjson

from chatio import jsontext
from chatio.rfc6455 import GOING_AWAY, POLICY_VIOLATION
from chatio.transport import sio
from chatio.transport.engine import EngineServer, Reason
from chatio.transport.seam import SocketIOSeam

#: How long an evicted socket gets to read its notice before its TCP connection is aborted.
EVICT_GRACE_SECONDS: Final = 5.0


class JsonCodec:
    """orjson behind the ``dumps``/``loads`` interface python-socketio expects.

    ``loads`` is :func:`chatio.jsontext.loads`: what orjson alone would refuse but a schema should answer
    (a lone surrogate, an integer past 64 bits) is decoded.
    """

    @staticmethod
    def dumps(obj: Any, **_kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(text: str | bytes, **_kwargs: Any) -> Any:
        return jsontext.loads(text)


class ChatServer(SocketIOSeam):
    """python-socketio's server on :class:`~chatio.transport.engine.EngineServer`; see the module docstring.

    ``ping_interval``, ``ping_timeout``, ``max_http_buffer_size``, ``cors_allowed_origins`` and
    ``cookie`` configure the Engine.IO server, as python-socketio's would; ``websocket_compression``,
    ``connect_timeout`` (seconds a session may stay without a Socket.IO namespace) and ``body_timeout``
    (seconds a long-polling POST may take to arrive) are chatio's.
    """

    def __init__(
        self,
        *,
        websocket_compression: bool = False,
        connect_timeout: float = 45,
        body_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        options: dict[str, Any] = {
            "websocket_compression": websocket_compression,
            "connect_timeout": connect_timeout,
        }
        if body_timeout is not None:
            options["body_timeout"] = body_timeout
        super().__init__(EngineServer, options, json=JsonCodec, **kwargs)
        self.eio: EngineServer
        self.eio.on("message", self.receive_message)
        self.eio.joined_namespace = self.joined
        #: Bytes of binary attachments received so far, per session with a binary packet waiting.
        self._attached: dict[str, int] = {}

    # --- the slow-consumer bound ------------------------------------------------------------------------

    @property
    def max_queue(self) -> int:
        """Packets a session may have waiting (0: no bound); ``on_overflow(sid)`` hears of one that has."""
        return self.eio.max_backlog

    @max_queue.setter
    def max_queue(self, value: int) -> None:
        self.eio.max_backlog = value

    @property
    def on_overflow(self) -> Any:
        return self.eio.on_overflow

    @on_overflow.setter
    def on_overflow(self, listener: Any) -> None:
        self.eio.on_overflow = listener

    async def evict(self, eio_sid: str, event: str, data: Any, *, grace_seconds: float | None = None) -> None:
        """Drop what waits for the session, send it ``event`` and end its transport (its client reconnects).

        No Engine.IO CLOSE is sent: python-socketio's client does not reconnect after one. The session's
        Socket.IO disconnect handlers run as for any closed transport. A WebSocket client that does not
        read the notice within ``grace_seconds`` has its TCP connection aborted.
        """
        session = self.eio.sessions.get(eio_sid)
        if session is None or session.closed:
            return
        session.drop_backlog()
        session.send_text(b"2" + orjson.dumps([event, data]))
        wire = session.wire
        await session.close(Reason.SERVER_DISCONNECT, notify=False, code=POLICY_VIOLATION)
        if wire is None:
            return  # the (next) poll gets the notice, the one after finds no session: the client reconnects
        grace = EVICT_GRACE_SECONDS if grace_seconds is None else grace_seconds
        deadline = asyncio.get_running_loop().time() + grace
        while not wire.lost:
            if asyncio.get_running_loop().time() >= deadline:
                wire.abort()
                return
            await asyncio.sleep(0.1)

    # --- packets from clients ---------------------------------------------------------------------------

    async def receive_message(self, eio_sid: str, data: str | bytes) -> None:
        """One Socket.IO packet (or binary attachment) from a client; ``ValueError`` closes the session."""
        if not isinstance(data, str):
            await self._attachment(eio_sid, data)
            return
        if eio_sid in self._attached:
            raise ValueError("a text packet while binary attachments were awaited")
        if data.startswith("2") and await self.receive_event(eio_sid, data):
            return
        header = sio.check(data)
        sid = self.manager.sid_from_eio_sid(eio_sid, header.namespace)
        if header.type == sio.CONNECT:
            if sid is not None:
                raise ValueError(f"a second CONNECT to namespace {header.namespace[:64]!r}")
        elif sid is None:
            raise ValueError(f"{header.name} for namespace {header.namespace[:64]!r}, not joined")
        if header.attachments:
            self._attached[eio_sid] = len(data)
        if header.type == sio.DISCONNECT:
            session = self.eio.sessions.get(eio_sid)
            if session is not None:  # after the commands sent before it
                session.in_order(self.handle_packet(eio_sid, data))
                return
        await self.handle_packet(eio_sid, data)

    async def _attachment(self, eio_sid: str, data: bytes) -> None:
        received = self._attached.get(eio_sid)
        if received is None or not self.awaits_attachments(eio_sid):
            raise ValueError("a binary message that no binary packet announced")
        received += len(data)
        if received > self.eio.max_payload:
            raise ValueError(f"a binary packet with attachments over {self.eio.max_payload} bytes")
        self._attached[eio_sid] = received
        await self.handle_packet(eio_sid, data)
        if not self.awaits_attachments(eio_sid):
            del self._attached[eio_sid]

    async def receive_event(self, eio_sid: str, text: str) -> bool:
        """Handle ``2[<id>][...]``, an EVENT for ``/``, decoding it once; False for any other shape."""
        end, size = 1, len(text)
        while end < size and end < 21 and text[end].isdigit():
            end += 1
        if end == size or text[end] != "[":
            return False
        try:
            args = orjson.loads(text[end:])
        except orjson.JSONDecodeError:
            return False
        if not args or type(args) is not list or type(args[0]) is not str:
            return False
        await self.handle_event(eio_sid, "/", int(text[1:end]) if end > 1 else None, args)
        return True

    def joined(self, eio_sid: str) -> bool:
        """Whether the session is connected to a Socket.IO namespace (else its connect timeout runs)."""
        manager = self.manager
        for namespace in list(manager.get_namespaces()):
            sid = manager.sid_from_eio_sid(eio_sid, namespace)
            if sid is not None and manager.is_connected(sid, namespace):
                return True
        return False

    def session_ending(self, eio_sid: str) -> None:
        self._attached.pop(eio_sid, None)

    # --- shutdown ---------------------------------------------------------------------------------------

    async def close_transports(self, grace_seconds: float = 1.0) -> None:
        """End every Engine.IO session: its transport closes (WebSocket 1001), without an Engine.IO CLOSE.

        What is already on its way (a ``server_shutdown`` notice, say) gets up to ``grace_seconds`` to reach
        its clients. Clients see their transport close, not a server disconnect, so socket.io clients (the
        JavaScript and the Python one) reconnect by themselves.
        """
        engine = self.eio
        engine.pinger.stop()
        sessions = [session for session in engine.sessions.values() if not session.closed]
        deadline = asyncio.get_running_loop().time() + grace_seconds
        while any(session.sending for session in sessions):
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.01)
        for session in sessions:
            await session.close(Reason.TRANSPORT_CLOSE, notify=False, code=GOING_AWAY)
        engine.sessions.clear()
