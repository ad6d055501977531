"""A plain WebSocket (no Engine.IO) taken over from aiohttp onto a :class:`~chatio.transport.wire.Wire`:
what ``/ws/chat`` (:mod:`chatio.realtime.plainchat`) stands on."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from chatio.transport.seam import take_over
from chatio.transport.wire import Detached, Receiver, Wire, handshake


def accept_websocket(
    request: web.Request,
    receiver_for: Callable[[Wire], Receiver],
    *,
    max_size: int,
    max_backlog: int,
    compress: bool,
) -> tuple[web.StreamResponse, Wire | None]:
    """Answer the upgrade and serve the connection with ``receiver_for(wire)``; the response for the
    request handler to return, and the wire (None when the handshake was refused or the client left)."""
    answer = handshake(request, compress=compress)
    if isinstance(answer, web.StreamResponse):
        return answer, None
    response, deflate = answer
    wire = Wire(max_size=max_size, max_backlog=max_backlog, deflate=deflate)
    try:
        tail = take_over(request, wire, response)
    except ConnectionResetError:  # the client left during the handshake
        return Detached(), None
    wire.receiver = receiver_for(wire)
    if tail:
        wire.data_received(tail)
    return Detached(), wire
