"""The Socket.IO namespace: validate -> chat core -> ack. Thin: every decision lives in ``chat.py``.

Every command goes through :meth:`ChatNamespace.trigger_event`, which validates the payload with the
command's schema, times it, counts it, and turns a :class:`ChatError` (or a bug) into the one ack shape of
docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from marshmallow import Schema

from chatio import errors, schemas
from chatio.auth import Authenticator, AuthError
from chatio.chat import ChatService, message_wire, room_wire
from chatio.errors import ChatError
from chatio.metrics import Metrics
from chatio.store import Unavailable
from chatio.transport import ACK_REQUESTED

log = logging.getLogger(__name__)

Ack = dict[str, Any]


class SocketOutbox:
    """The chat core's :class:`~chatio.chat.Outbox` over a python-socketio server."""

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


class ChatNamespace(socketio.AsyncNamespace):  # type: ignore[misc]  # untyped base class
    """The default namespace ``/``. One instance per server."""

    def __init__(
        self,
        service: ChatService,
        authenticator: Authenticator,
        metrics: Metrics,
        pod: str,
    ) -> None:
        super().__init__("/")
        self.service = service
        self.authenticator = authenticator
        self.metrics = metrics
        self.pod = pod
        self.accepting = True
        self._background: set[asyncio.Task[None]] = set()
        max_length = service.settings.message_max_length
        self._commands: dict[str, tuple[Schema, Callable[[str, dict[str, Any]], Awaitable[Ack]]]] = {
            "join_room": (schemas.JoinRoom(), self.on_join_room),
            "leave_room": (schemas.RoomOnly(), self.on_leave_room),
            "send_message": (schemas.SendMessage(max_length=max_length), self.on_send_message),
            "typing_start": (schemas.RoomOnly(), self.on_typing_start),
            "typing_stop": (schemas.RoomOnly(), self.on_typing_stop),
            "user_status": (schemas.UserStatus(), self.on_user_status),
            "history": (schemas.History(), self.on_history),
        }

    # --- dispatch ------------------------------------------------------------------------------------

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event == "connect":
            return await self._connect(args[0], args[2] if len(args) > 2 else None)
        if event == "disconnect":
            await self.service.disconnect(args[0])
            return None
        sid, payload = args[0], args[1:]
        started = time.perf_counter()
        command = self._commands.get(event)
        label = event if command is not None else "unknown"
        try:
            if command is None:
                raise ChatError(errors.UNKNOWN_EVENT, f"unknown event {event[:64]!r}")
            if not self.accepting:
                raise ChatError(errors.SHUTTING_DOWN, "the server is shutting down, reconnect")
            if len(payload) != 1:
                raise ChatError(errors.INVALID_PAYLOAD, f"expected one payload object, got {len(payload)}")
            schema, handler = command
            ack = await handler(sid, schemas.load(schema, payload[0]))
            outcome = "ok"
        except ChatError as exc:
            ack, outcome = self._refuse(sid, event, exc), exc.code
        except Exception:
            log.exception("command %s failed", label)
            failure = ChatError(errors.INTERNAL, "internal error; it has been logged")
            ack, outcome = self._refuse(sid, event, failure), errors.INTERNAL
        self.metrics.event_duration.labels(label).observe(time.perf_counter() - started)
        self.metrics.events.labels(label, outcome).inc()
        return ack

    def _refuse(self, sid: str, event: str, error: ChatError) -> Ack:
        ack = {"ok": False, "error": error.as_wire()}
        if not ACK_REQUESTED.get():
            self._spawn(self.emit("command_error", {"event": event[:64], "error": ack["error"]}, to=sid))
        return ack

    def _spawn(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("background emit failed")

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- connection ----------------------------------------------------------------------------------

    async def _connect(self, sid: str, auth: object) -> bool:
        if not self.accepting:
            self.metrics.connects.labels("refused").inc()
            raise socketio.exceptions.ConnectionRefusedError("the server is shutting down, reconnect")
        try:
            identity = await self.authenticator.authenticate(auth)
        except AuthError as exc:
            self.metrics.connects.labels("refused").inc()
            raise socketio.exceptions.ConnectionRefusedError(str(exc)) from None
        except Unavailable:
            self.metrics.connects.labels("unavailable").inc()
            raise socketio.exceptions.ConnectionRefusedError("storage is unavailable, retry") from None
        await self.service.connect(sid, identity)
        self.metrics.connects.labels("ok").inc()
        # The CONNECT packet is sent after this handler returns; the session event must follow it.
        session = {"user": identity.username, "user_id": identity.user_id, "pod": self.pod}
        self._spawn(self.emit("session", session, to=sid))
        return True

    # --- commands ------------------------------------------------------------------------------------

    async def on_join_room(self, sid: str, payload: dict[str, Any]) -> Ack:
        joined = await self.service.join(sid, payload["room"], payload.get("since_seq"))
        return {
            "ok": True,
            "room": room_wire(joined.room),
            "members": [{"user": m.user, "status": m.status} for m in joined.members],
            "history": [message_wire(message) for message in joined.history],
            "reset": joined.reset,
        }

    async def on_leave_room(self, sid: str, payload: dict[str, Any]) -> Ack:
        await self.service.leave(sid, payload["room"])
        return {"ok": True, "room": payload["room"]}

    async def on_send_message(self, sid: str, payload: dict[str, Any]) -> Ack:
        message = await self.service.send(sid, payload["room"], payload["text"], payload.get("client_msg_id"))
        self.metrics.messages_published.inc()
        return {"ok": True, "message": message_wire(message)}

    async def on_typing_start(self, sid: str, payload: dict[str, Any]) -> Ack:
        await self.service.set_typing(sid, payload["room"], True)
        return {"ok": True}

    async def on_typing_stop(self, sid: str, payload: dict[str, Any]) -> Ack:
        await self.service.set_typing(sid, payload["room"], False)
        return {"ok": True}

    async def on_user_status(self, sid: str, payload: dict[str, Any]) -> Ack:
        await self.service.set_status(sid, payload["status"])
        return {"ok": True, "status": payload["status"]}

    async def on_history(self, sid: str, payload: dict[str, Any]) -> Ack:
        page = await self.service.history(
            sid,
            payload["room"],
            before=payload.get("before"),
            after=payload.get("after"),
            limit=payload.get("limit"),
        )
        return {"ok": True, "messages": [message_wire(m) for m in page.messages], "has_more": page.has_more}
