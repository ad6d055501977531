"""The chat core's :class:`~chatio.chat.ports.Outbox` over a python-socketio server: what the domain
decides to tell people becomes Socket.IO room membership and emits (on every process, through the manager)."""

from __future__ import annotations

from typing import Any

import socketio


class SocketOutbox:
    """The chat core's :class:`~chatio.chat.ports.Outbox` over a python-socketio server."""

    def __init__(self, server: socketio.AsyncServer) -> None:
        self._server = server

    async def enter(self, sid: str, room: str) -> None:
        await self._server.enter_room(sid, room)

    async def exit(self, sid: str, room: str) -> None:
        await self._server.leave_room(sid, room)

    async def emit(
        self, event: str, data: dict[str, Any], *, to: str | list[str], skip: str | list[str] | None = None
    ) -> None:
        await self._server.emit(event, data, to=to, skip_sid=skip)
