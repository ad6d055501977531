"""The transport: chatio's Engine.IO server, python-socketio on it, the broadcast fast path, Redis fan-out.

Modules, from the wire up: :mod:`~chatio.transport.wire` (a WebSocket on a raw asyncio transport),
:mod:`~chatio.transport.eio` (Engine.IO sessions), :mod:`~chatio.transport.pinger` (their heartbeat and
deadlines), :mod:`~chatio.transport.payload` (long-polling payloads), :mod:`~chatio.transport.http` (refusals,
bounded bodies, the cookie), :mod:`~chatio.transport.engine` (the Engine.IO v4 server: HTTP rules,
handshake, long-polling, upgrade), :mod:`~chatio.transport.sio` (the shape
of a Socket.IO packet), :mod:`~chatio.transport.server` (``ChatServer``: python-socketio's ``AsyncServer``
on that engine), :mod:`~chatio.transport.broadcast` (the managers' encode-once fast path),
:mod:`~chatio.transport.fanout` (Redis fan-out between processes), :mod:`~chatio.transport.frames`.

Words: a *session* here is an Engine.IO session (its ``sid``), the protocol's own term; everywhere else in
chatio a session is a login session (a refresh-token family, :mod:`chatio.accounts`). The *wire* is a
WebSocket connection taken from aiohttp (:class:`~chatio.transport.wire.Wire`); the load tester's framing
is :mod:`chatio.loadtest.framing`.

Other packages' private internals are touched in :mod:`~chatio.transport.seam` only (and the pub/sub
manager hooks in :mod:`~chatio.transport.fanout`); ``tests/transport/test_seam.py`` pins each use.

May import :mod:`chatio.rfc6455`, :mod:`chatio.jsontext`, :mod:`chatio.background`,
:mod:`chatio.redisconn`, :mod:`chatio.store` and the libraries; never the chat domain (what it must know of
it, such as which rooms are users', the composition root passes in), :mod:`chatio.realtime`,
:mod:`chatio.web` or the composition root.
"""

from chatio.transport.broadcast import DeliveryListener, FastManager, FastRedisManager, Foreign
from chatio.transport.frames import text_frame
from chatio.transport.plain import accept_websocket
from chatio.transport.seam import ACK_REQUESTED, CLIENT_EVENT
from chatio.transport.server import EVICT_GRACE_SECONDS, ChatServer, JsonCodec
from chatio.transport.wire import DIRECT_BUFFER_LIMIT, Wire

__all__ = [
    "ACK_REQUESTED",
    "CLIENT_EVENT",
    "DIRECT_BUFFER_LIMIT",
    "EVICT_GRACE_SECONDS",
    "ChatServer",
    "DeliveryListener",
    "FastManager",
    "FastRedisManager",
    "Foreign",
    "JsonCodec",
    "Wire",
    "accept_websocket",
    "text_frame",
]
