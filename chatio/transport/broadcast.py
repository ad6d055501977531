"""The broadcast fast path: one encoding, one finished frame, written to every recipient.

python-socketio delivers a room emit by creating one asyncio task per recipient, which puts the packet on
the Engine.IO socket's queue, which wakes a writer task that encodes the packet again and arms a timer for
its next poll: about 70 us of Python per delivery. :class:`FastManager` encodes the packet once (orjson),
builds the WebSocket text frame once, and hands those same bytes to every recipient: a session on a
WebSocket writes them at once (or after its own backlog, so the connection's order holds); a long-polling
session gets the same encoded packet on its queue, in order, still without a task per recipient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson
import socketio

from chatio.transport.frames import text_frame

DeliveryListener = Callable[[str, int], None]


class Foreign(Protocol):
    """A manager participant that is no Engine.IO session (a plain WebSocket client of ``/ws/chat``): it
    is in rooms like any socket and hears their emits, from this process and through Redis, in its terms."""

    def deliver(self, event: str, args: list[Any]) -> bool:
        """One emit that reached this participant; False when it could not take it."""


class FastManager(socketio.AsyncManager):  # type: ignore[misc]  # untyped base class
    """The in-process manager with the fast path; also the local-delivery half of :class:`FastRedisManager`.

    ``on_delivered(event, count)`` is told how many sockets on this process each emit reached.
    """

    def __init__(self, *, fast: bool = True, on_delivered: DeliveryListener | None = None) -> None:
        super().__init__()
        self.fast = fast
        self.on_delivered = on_delivered
        self._sid_rooms: dict[tuple[str, str], set[Any]] = {}
        #: Participants by their own ``eio_sid`` that are no Engine.IO session (see :class:`Foreign`).
        self.foreign: dict[str, Foreign] = {}

    # --- rooms by sid --------------------------------------------------------------------------------------
    # python-socketio finds a client's rooms by scanning (a copy of) every room of the namespace, each
    # client's own room included: disconnecting n clients costs n squared, 30 s at 10,000 connections
    # when a server shuts down. This index answers in time proportional to the client's own rooms.

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._sid_rooms.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._sid_rooms.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._sid_rooms[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # The base class's body, with the scan replaced by the index (python-socketio 5.18.1).
        for room in list(self._sid_rooms.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [room for room in self._sid_rooms.get((namespace, sid), ()) if room is not None]

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
            self._to_foreign(event, data, namespace, room, skip)
            return
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        try:
            encoded = orjson.dumps([event, *args])
        except TypeError:  # binary attachments and the like: python-socketio knows how
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, **kwargs)
            self._to_foreign(event, data, namespace, room, skip)
            return
        # Engine.IO MESSAGE (4) carrying a Socket.IO EVENT (2) for the default namespace.
        frame = text_frame(b"42" + encoded)
        queued: str | None = None
        sessions = self.server.eio.sessions
        delivered = 0
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            session = sessions.get(eio_sid)
            if session is None:
                foreign = self.foreign.get(eio_sid) if self.foreign else None
                if foreign is not None:
                    delivered += foreign.deliver(event, args)
                continue
            if session.closed:
                continue
            wire = session.wire
            if wire is not None:
                delivered += wire.send(frame)
                continue
            if queued is None:
                queued = "42" + encoded.decode()
            delivered += session.enqueue(queued)
        self._count(event, delivered)

    def _to_foreign(self, event: str, data: Any, namespace: str, room: Any, skip: set[Any]) -> None:
        if not self.foreign or namespace not in self.rooms:
            return
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        for sid, eio_sid in self.get_participants(namespace, room):
            foreign = self.foreign.get(eio_sid)
            if foreign is not None and sid not in skip:
                foreign.deliver(event, args)

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
