"""The Socket.IO namespace: validate -> chat core -> ack. Thin: every decision lives in :mod:`chatio.chat`.

Every command goes through :meth:`ChatNamespace.trigger_event`, which validates the payload with the
command's schema, times it, counts it, and turns a :class:`ChatError` (or a bug) into the one ack shape of
docs/protocol.md.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import socketio
from marshmallow import Schema

from chatio import errors, schemas
from chatio.accounts.identity import Authenticator, AuthError
from chatio.accounts.service import AccountService
from chatio.background import Background
from chatio.chat.access import RoomAccess
from chatio.chat.moderation import ACTIONS, Moderation, audit_wire
from chatio.chat.ports import user_room
from chatio.chat.service import ChatService, Joined
from chatio.chat.wire import message_wire, reading_wire, room_wire
from chatio.errors import ChatError
from chatio.metrics import Metrics
from chatio.ratelimit.gate import Gate
from chatio.realtime.endings import Endings
from chatio.schemas import escaped
from chatio.store import Unavailable
from chatio.transport import ACK_REQUESTED, CLIENT_EVENT

log = logging.getLogger(__name__)

#: Set in a session's environ by :meth:`ChatNamespace.admit` (its handshake was counted).
_ADMITTED = "chatio.admitted"

#: Event names a client may not send: python-socketio's lifecycle events (client and server side) and
#: socket.io's reserved names. They are refused as unknown events and never reach the lifecycle code.
RESERVED_EVENTS: Final = frozenset(
    {
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "__disconnect_final",
        "newListener",
        "removeListener",
    }
)

Ack = dict[str, Any]


class ChatNamespace(socketio.AsyncNamespace):  # type: ignore[misc]  # untyped base class
    """The default namespace ``/``. One instance per server."""

    def __init__(
        self,
        service: ChatService,
        authenticator: Authenticator,
        metrics: Metrics,
        pod: str,
        *,
        accounts: AccountService | None = None,
        access: RoomAccess | None = None,
        moderation: Moderation | None = None,
        connect_gate: Gate | None = None,
    ) -> None:
        super().__init__("/")
        self.service = service
        self.authenticator = authenticator
        self.metrics = metrics
        self.pod = pod
        self.accepting = True
        self.accounts = accounts
        self.access = access
        self.moderation = moderation
        self.connect_gate = connect_gate
        #: How connections end with their credential (``chatio.realtime.endings``).
        self.endings = Endings(service, self.end)
        self.expiry = self.endings.expiry
        self._background = Background(log, "background emit failed")
        max_length = service.settings.message_max_length
        self._commands: dict[str, tuple[Schema, Callable[[str, dict[str, Any]], Awaitable[Ack]]]] = {
            "join_room": (schemas.JoinRoom(), self.on_join_room),
            "leave_room": (schemas.RoomOnly(), self.on_leave_room),
            "send_message": (schemas.SendMessage(max_length=max_length), self.on_send_message),
            "edit_message": (schemas.EditMessage(max_length=max_length), self.on_edit_message),
            "delete_message": (schemas.MessageRef(), self.on_delete_message),
            "react": (schemas.React(), self.on_react),
            "unreact": (schemas.React(), self.on_unreact),
            "mark_read": (schemas.MarkRead(), self.on_mark_read),
            "set_room_options": (schemas.RoomOptions(), self.on_set_room_options),
            "typing_start": (schemas.RoomOnly(), self.on_typing_start),
            "typing_stop": (schemas.RoomOnly(), self.on_typing_stop),
            "user_status": (schemas.UserStatus(), self.on_user_status),
            "history": (schemas.History(), self.on_history),
        }
        if accounts is not None:
            self._commands["refresh_session"] = (schemas.TokenAuth(), self.on_refresh_session)
        if access is not None:
            self._commands.update(
                {
                    "create_room": (schemas.CreateRoomCommand(), self.on_create_room),
                    "invite": (schemas.Invite(), self.on_invite),
                    "accept_invite": (schemas.RoomOnly(), self.on_accept_invite),
                    "decline_invite": (schemas.RoomOnly(), self.on_decline_invite),
                    "set_role": (schemas.SetRole(), self.on_set_role),
                    "open_dm": (schemas.OpenDm(), self.on_open_dm),
                }
            )
        if moderation is not None:
            for action in ACTIONS:
                self._commands[action] = (schemas.Moderate(), functools.partial(self.on_moderate, action))

    # --- dispatch ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the token expiry clock: the end of the application's lifetime."""
        self.endings.close()

    async def trigger_event(self, event: str, *args: Any) -> Any:
        lifecycle = CLIENT_EVENT.get() != event
        if event == "connect" and lifecycle:
            return await self._connect(args[0], args[1], args[2] if len(args) > 2 else None)
        if event == "disconnect" and lifecycle:
            self.expiry.forget(args[0])
            await self.service.disconnect(args[0])
            return None
        sid, payload = args[0], args[1:]
        started = time.perf_counter()
        command = self._commands.get(event)
        label = event if command is not None else "unknown"
        try:
            if event in RESERVED_EVENTS:
                raise ChatError(
                    errors.UNKNOWN_EVENT, f"{event!r} is a reserved event name; clients may not send it"
                )
            if command is None:
                raise ChatError(errors.UNKNOWN_EVENT, f"unknown event {escaped(event[:64])!r}")
            if not self.accepting:
                raise ChatError(errors.SHUTTING_DOWN, "the server is shutting down, reconnect")
            if len(payload) != 1:
                raise ChatError(errors.INVALID_PAYLOAD, f"expected one payload object, got {len(payload)}")
            if _carries_binary(payload[0]):
                raise ChatError(errors.INVALID_PAYLOAD, "chat commands take no binary data")
            schema, handler = command
            ack = await handler(sid, schemas.load(schema, payload[0]))
            outcome = "ok"
        except ChatError as exc:
            ack, outcome = self._refuse(sid, event, exc), exc.code
        except Exception:
            log.exception("command %s failed", label)
            failure = ChatError(errors.INTERNAL, "internal error; it has been logged")
            ack, outcome = self._refuse(sid, event, failure), errors.INTERNAL
        self.metrics.event_handled(label, outcome, time.perf_counter() - started)
        return ack

    def _refuse(self, sid: str, event: str, error: ChatError) -> Ack:
        ack = {"ok": False, "error": error.as_wire()}
        if not ACK_REQUESTED.get():
            report = {"event": escaped(event[:64]), "error": ack["error"]}
            self._background.spawn(self.emit("command_error", report, to=sid))
        return ack

    # --- connection ----------------------------------------------------------------------------------

    async def admit(self, environ: dict[str, Any]) -> str | None:
        """The Engine.IO handshake: None to accept a session, else why not (the per-address limit).

        A session counts against ``CHATIO_CONNECT_RATE_PER_MINUTE`` from its handshake, whether or not it
        ever sends a Socket.IO CONNECT; its first CONNECT is not counted again."""
        if self.connect_gate is None:
            return None
        try:
            await self.connect_gate.check_socket(environ)
        except ChatError as exc:
            self.metrics.connects.labels("refused").inc()
            return exc.message
        environ[_ADMITTED] = True
        return None

    async def _connect(self, sid: str, environ: dict[str, Any], auth: object) -> bool:
        if not self.accepting:
            self.metrics.connects.labels("refused").inc()
            raise socketio.exceptions.ConnectionRefusedError("the server is shutting down, reconnect")
        try:
            # The Engine.IO handshake counted this connection (admit); a further CONNECT counts again.
            if self.connect_gate is not None and not environ.pop(_ADMITTED, False):
                await self.connect_gate.check_socket(environ)
            identity = await self.authenticator.authenticate(auth)
        except ChatError as exc:  # the connection rate per address
            self.metrics.connects.labels("refused").inc()
            raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.as_wire()) from None
        except AuthError as exc:
            self.metrics.connects.labels("refused").inc()
            raise socketio.exceptions.ConnectionRefusedError(str(exc), {"code": exc.code}) from None
        except Unavailable:
            self.metrics.connects.labels("unavailable").inc()
            raise socketio.exceptions.ConnectionRefusedError("storage is unavailable, retry") from None
        await self.service.connect(sid, identity)
        # Every socket of a user, on every process, is in the user's room: invitations reach it there.
        await self.enter_room(sid, user_room(identity.user_id))
        self.expiry.watch(sid, identity.expires_at)
        self.metrics.connects.labels("ok").inc()
        # The CONNECT packet is sent after this handler returns; the session event must follow it.
        session = {
            "user": identity.username,
            "userId": identity.user_id,
            "pod": self.pod,
            "guest": identity.guest,
            "admin": identity.admin,
            "expiresAt": identity.expires_at_ms,
        }
        self._background.spawn(self.emit("session", session, to=sid))
        return True

    # --- ending connections --------------------------------------------------------------------------

    async def end(self, sid: str, code: str, message: str) -> None:
        """Tell the socket why (``disconnect_reason``), then disconnect it (clients do not reconnect)."""
        self.expiry.forget(sid)
        await self.emit("disconnect_reason", {"code": code, "message": message}, to=sid)
        await self.disconnect(sid)

    def overflowed(self, eio_sid: str) -> None:
        """The socket's client reads slower than its messages come: evict it (``ChatServer.evict``)."""
        log.warning("evicting a slow consumer (engine.io session %s)", eio_sid)
        notice = {
            "code": "slow_consumer",
            "message": "you read too slowly and fell too far behind; reconnect and catch up with sinceSeq",
        }
        self._background.spawn(self.server.evict(eio_sid, "disconnect_reason", notice))

    # --- commands ------------------------------------------------------------------------------------

    async def on_join_room(self, sid: str, payload: dict[str, Any]) -> Ack:
        joined = await self.service.join(
            sid, payload["room"], payload.get("sinceSeq"), payload.get("sinceChange")
        )
        return _joined(joined)

    async def on_leave_room(self, sid: str, payload: dict[str, Any]) -> Ack:
        await self.service.leave(sid, payload["room"])
        return {"ok": True, "room": payload["room"]}

    async def on_send_message(self, sid: str, payload: dict[str, Any]) -> Ack:
        message = await self.service.send(
            sid, payload["room"], payload["text"], payload.get("clientMsgId"), payload.get("replyTo")
        )
        self.metrics.messages_published.inc()
        return {"ok": True, "message": message_wire(message)}

    async def on_edit_message(self, sid: str, payload: dict[str, Any]) -> Ack:
        message = await self.service.edit(sid, payload["room"], payload["id"], payload["text"])
        return {"ok": True, "message": message_wire(message)}

    async def on_delete_message(self, sid: str, payload: dict[str, Any]) -> Ack:
        message = await self.service.delete(sid, payload["room"], payload["id"])
        return {"ok": True, "message": message_wire(message)}

    async def on_react(self, sid: str, payload: dict[str, Any]) -> Ack:
        message = await self.service.react(sid, payload["room"], payload["id"], payload["emoji"], add=True)
        return {"ok": True, "message": message_wire(message)}

    async def on_unreact(self, sid: str, payload: dict[str, Any]) -> Ack:
        message = await self.service.react(sid, payload["room"], payload["id"], payload["emoji"], add=False)
        return {"ok": True, "message": message_wire(message)}

    async def on_mark_read(self, sid: str, payload: dict[str, Any]) -> Ack:
        reading = await self.service.mark_read(sid, payload["room"], payload["seq"])
        return {"ok": True} | reading_wire(reading)

    async def on_set_room_options(self, sid: str, payload: dict[str, Any]) -> Ack:
        retention = (payload["retentionDays"],) if "retentionDays" in payload else None
        room = await self.service.set_room_options(
            sid, payload["room"], receipts=payload.get("receipts"), retention=retention
        )
        return {"ok": True, "room": room_wire(room)}

    async def on_typing_start(self, sid: str, payload: dict[str, Any]) -> Ack:
        await self.service.set_typing(sid, payload["room"], True)
        return {"ok": True}

    async def on_typing_stop(self, sid: str, payload: dict[str, Any]) -> Ack:
        await self.service.set_typing(sid, payload["room"], False)
        return {"ok": True}

    async def on_user_status(self, sid: str, payload: dict[str, Any]) -> Ack:
        await self.service.set_status(sid, payload["status"])
        return {"ok": True, "status": payload["status"]}

    async def on_refresh_session(self, sid: str, payload: dict[str, Any]) -> Ack:
        assert self.accounts is not None
        connection = self.service.connection(sid)
        identity = await self.accounts.renew(connection.identity, payload["token"])
        connection.identity = identity
        self.expiry.watch(sid, identity.expires_at)
        return {"ok": True, "expiresAt": identity.expires_at_ms}

    async def on_create_room(self, sid: str, payload: dict[str, Any]) -> Ack:
        assert self.access is not None
        identity = self.service.connection(sid).identity
        room = await self.access.create_room(identity, payload["room"], public=payload["public"])
        return {"ok": True, "room": room_wire(room)}

    async def on_invite(self, sid: str, payload: dict[str, Any]) -> Ack:
        assert self.access is not None
        await self.access.invite(self.service.connection(sid).identity, payload["room"], payload["user"])
        return {"ok": True, "room": payload["room"], "user": payload["user"]}

    async def on_accept_invite(self, sid: str, payload: dict[str, Any]) -> Ack:
        assert self.access is not None
        await self.access.accept(self.service.connection(sid).identity, payload["room"])
        return _joined(await self.service.join(sid, payload["room"]))

    async def on_decline_invite(self, sid: str, payload: dict[str, Any]) -> Ack:
        assert self.access is not None
        await self.access.decline(self.service.connection(sid).identity, payload["room"])
        return {"ok": True, "room": payload["room"]}

    async def on_set_role(self, sid: str, payload: dict[str, Any]) -> Ack:
        assert self.access is not None
        identity = self.service.connection(sid).identity
        await self.access.set_role(identity, payload["room"], payload["user"], payload["role"])
        return {"ok": True}

    async def on_open_dm(self, sid: str, payload: dict[str, Any]) -> Ack:
        assert self.access is not None
        direct = await self.access.open_dm(self.service.connection(sid).identity, payload["user"])
        return _joined(await self.service.join(sid, direct.room.id)) | {"user": direct.peer.username}

    async def on_moderate(self, action: str, sid: str, payload: dict[str, Any]) -> Ack:
        assert self.moderation is not None
        identity = self.service.connection(sid).identity
        entry = await self.moderation.act(
            identity,
            action,
            payload["room"],
            payload["user"],
            reason=payload["reason"],
            seconds=payload.get("seconds"),
        )
        return {"ok": True, "action": audit_wire(entry)}

    async def on_history(self, sid: str, payload: dict[str, Any]) -> Ack:
        page = await self.service.history(
            sid,
            payload["room"],
            before=payload.get("before"),
            after=payload.get("after"),
            limit=payload.get("limit"),
        )
        return {"ok": True, "messages": [message_wire(m) for m in page.messages], "hasMore": page.has_more}


def _joined(joined: Joined) -> Ack:
    """The ack of ``join_room`` (and of ``accept_invite`` and ``open_dm``, which join too)."""
    return {
        "ok": True,
        "room": room_wire(joined.room),
        "members": [
            {"user": m.user, "displayName": joined.names.get(m.user, m.user), "status": m.status}
            for m in joined.members
        ],
        "history": [message_wire(message) for message in joined.history],
        "reset": joined.reset,
        "changes": [message_wire(message) for message in joined.changes],
        "change": joined.change,
        "role": joined.role,
    } | ({} if joined.reading is None else reading_wire(joined.reading))


def _carries_binary(value: object, depth: int = 0) -> bool:
    """True when ``value`` holds bytes anywhere (python-socketio puts binary attachments back in place)."""
    if isinstance(value, bytes | bytearray):
        return True
    if depth > 32:
        return False
    if isinstance(value, dict):
        return any(_carries_binary(item, depth + 1) for item in value.values())
    if isinstance(value, list):
        return any(_carries_binary(item, depth + 1) for item in value)
    return False
