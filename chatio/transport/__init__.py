"""The one package that touches python-socketio's, python-engineio's and aiohttp's internals.

All three are pinned exactly in pyproject.toml because of what this package relies on, and
``tests/transport/test_seam.py`` pins each assumption so that an upgrade that breaks one fails loudly:

* ``AsyncServer._handle_event_internal(server, sid, eio_sid, data, namespace, id)`` is wrapped to record
  whether the client asked for an acknowledgement (``ACK_REQUESTED``), so that a failed command without one
  can still be reported (``command_error``);
* ``AsyncServer._handle_eio_connect``, ``_handle_eio_disconnect``, ``_send_packet`` and ``_send_eio_packet``
  are extended: a long-polling session answers each poll with at most the 16 packets python-engineio's
  client accepts (:class:`~chatio.transport.eio.PollingSession`), a pending long-poll is released when
  its session ends, and every packet bound for a long-polling socket passes the slow-consumer bound
  (``CHATIO_SLOW_CONSUMER_MAX_QUEUE``);
* ``engineio.AsyncServer._async['websocket']`` (the aiohttp WebSocket wrapper) is replaced per server:
  the handshake is answered here and the TCP connection is taken from aiohttp
  (:mod:`~chatio.transport.wire`: aiohttp 3.14's request handler is pinned too), so that every WebSocket is
  served by a :class:`~chatio.transport.wire.Wire` and a lean
  :class:`~chatio.transport.eio.WebSocketSession` (no task while idle, frames written directly, one
  pinger per server) instead of Engine.IO's reader, writer and ping tasks and queue and aiohttp's request;
  per-message deflate is negotiated only when ``CHATIO_WEBSOCKET_COMPRESSION`` is on;
* python-socketio keeps, per session, only the client's address of its first request's environ
  (``client_environ``), not aiohttp's request;
* ``AsyncManager.emit`` is the broadcast fast path (:mod:`chatio.transport.broadcast`), also for local
  delivery under ``AsyncRedisManager`` through the method resolution order.

Modules: :mod:`~chatio.transport.server` (``ChatServer``), :mod:`~chatio.transport.eio` (Engine.IO
sessions, the pinger), :mod:`~chatio.transport.wire` (the WebSocket connection),
:mod:`~chatio.transport.broadcast` (the managers), :mod:`~chatio.transport.frames`.

May import :mod:`chatio.rfc6455`, :mod:`chatio.background`, :mod:`chatio.redisconn`, :mod:`chatio.store`
and the three libraries; never :mod:`chatio.realtime`, :mod:`chatio.web` or the composition root.
"""

from chatio.transport.broadcast import DeliveryListener, FastManager, FastRedisManager
from chatio.transport.eio import WebSocketSession
from chatio.transport.frames import text_frame
from chatio.transport.server import ACK_REQUESTED, EVICT_GRACE_SECONDS, ChatServer, JsonCodec
from chatio.transport.wire import DIRECT_BUFFER_LIMIT

__all__ = [
    "ACK_REQUESTED",
    "DIRECT_BUFFER_LIMIT",
    "EVICT_GRACE_SECONDS",
    "ChatServer",
    "DeliveryListener",
    "FastManager",
    "FastRedisManager",
    "JsonCodec",
    "WebSocketSession",
    "text_frame",
]
