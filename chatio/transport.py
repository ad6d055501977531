"""The one module that touches python-socketio's and python-engineio's internals.

Both packages are pinned exactly in pyproject.toml because of what this module relies on:

* ``AsyncServer._handle_event_internal(server, sid, eio_sid, data, namespace, id)``: wrapped to record
  whether the client asked for an acknowledgement, so that a failed command without one can still be
  reported (``command_error``).
* ``engineio.AsyncServer._async['websocket']``: the aiohttp WebSocket wrapper, replaced per server so that
  per-message deflate is negotiated only when ``CHATIO_WEBSOCKET_COMPRESSION`` is on (aiohttp's
  ``WebSocketResponse`` offers it by default, which costs about 40% more CPU per delivery), and so that
  shutdown can close every WebSocket itself: Engine.IO's own close waits for the client to hang up.

``tests/test_transport.py`` pins these assumptions so that an upgrade that breaks them fails loudly.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from typing import Any

import socketio
from aiohttp.web import WebSocketResponse
from engineio.async_drivers import aiohttp as eio_aiohttp

ACK_REQUESTED: contextvars.ContextVar[bool] = contextvars.ContextVar("chatio_ack_requested", default=True)


class ChatServer(socketio.AsyncServer):  # type: ignore[misc]  # untyped base class
    """python-socketio's server, plus the two hooks described in this module's docstring."""

    def __init__(self, *, websocket_compression: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.websockets: weakref.WeakSet[WebSocketResponse] = weakref.WeakSet()
        drivers = dict(self.eio._async)
        drivers["websocket"] = _websocket_class(websocket_compression, self.websockets)
        self.eio._async = drivers

    async def close_transports(self) -> None:
        """Close every Engine.IO session and WebSocket (code 1001, going away), without waiting on clients."""
        if self.eio.sockets:
            await self.eio.disconnect()
        open_sockets = [ws for ws in self.websockets if not ws.closed]
        if open_sockets:
            await asyncio.gather(
                *(ws.close(code=1001, message=b"server shutdown") for ws in open_sockets),
                return_exceptions=True,
            )

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: int | None
    ) -> None:
        token = ACK_REQUESTED.set(id is not None)
        try:
            await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
        finally:
            ACK_REQUESTED.reset(token)


def _websocket_class(compress: bool, registry: weakref.WeakSet[WebSocketResponse]) -> type:
    class ChatWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]  # untyped base class
        async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
            request = environ["aiohttp.request"]
            self._sock = WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=compress)
            registry.add(self._sock)
            await self._sock.prepare(request)
            self.environ = environ
            await self.handler(self)
            return self._sock

    return ChatWebSocket
