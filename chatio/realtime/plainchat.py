"""``/ws/chat``: seed 001's plain-WebSocket chat protocol, sharing everything with the Socket.IO clients.

A client connects with ``ws://host/ws/chat?userId=<name>`` (a guest, where guests are allowed) or
``?token=<access token>`` (or ``Authorization: Bearer``) and exchanges JSON text frames
``{"type": "ENTER" | "TALK" | "LEAVE" | "PING", "roomId", "userId", "message"}`` (docs/protocol.md,
"Plain WebSocket"). The server decides who the client is: a ``userId`` in a frame is ignored.

Each connection is a participant of the Socket.IO manager like any socket (:class:`PlainClient` is the
manager's :class:`~chatio.transport.Foreign`): it enters rooms through the chat core, so rooms, history,
limits, presence and the Redis fan-out are the Socket.IO clients' own, and the room events it hears
(``message``, ``user_joined``, ``user_left``) become TALK, ENTER and LEAVE frames.

A connection lives as long as its credential, as a Socket.IO one does (:mod:`chatio.realtime.endings`):
it ends when its access token expires (unless a REFRESH frame brought a newer token of the same user, as
``refresh_session`` does), and when its account is deleted or its session logged out or revoked. Each
ends with the ``disconnect_reason`` a Socket.IO client would get, which closes the WebSocket with ``1008``
and the reason ``<code>: <message>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from aiohttp import web

from chatio import errors, jsontext, schemas
from chatio.accounts.expiry import ExpiryClock
from chatio.accounts.identity import Identity
from chatio.accounts.service import AccountService
from chatio.chat.ports import user_room
from chatio.chat.service import ChatService
from chatio.chat.wire import message_wire
from chatio.errors import ChatError
from chatio.ratelimit.gate import Gate
from chatio.rfc6455 import GOING_AWAY, OP_PING, POLICY_VIOLATION, frame
from chatio.store import Unavailable
from chatio.transport import ChatServer, FastManager, Wire, accept_websocket, text_frame

log = logging.getLogger(__name__)

PATH: Final = "/ws/chat"
TYPES: Final = ("ENTER", "TALK", "LEAVE", "PING", "REFRESH")

_STATUS: Final = {
    errors.INVALID_PAYLOAD: 400,
    errors.UNAUTHORIZED: 401,
    errors.TOKEN_EXPIRED: 401,
    errors.FORBIDDEN: 403,
    errors.RATE_LIMITED: 429,
    errors.UNAVAILABLE: 503,
    errors.SHUTTING_DOWN: 503,
}
_dumps: Final = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


class PlainChat:
    """The ``/ws/chat`` endpoint of one process: upgrades, identities, and the clients it serves."""

    def __init__(
        self,
        service: ChatService,
        accounts: AccountService,
        server: ChatServer,
        *,
        accepting: Callable[[], bool] = lambda: True,
        connect_gate: Gate | None = None,
        expiry: ExpiryClock | None = None,
    ) -> None:
        """``expiry``: the clock that ends a connection when its access token expires (the namespace's)."""
        self.service = service
        self.accounts = accounts
        self.server = server
        self.accepting = accepting
        self.connect_gate = connect_gate
        self.expiry = expiry
        self.clients: dict[str, PlainClient] = {}
        settings = service.settings
        self._frame = schemas.PlainFrame(max_length=settings.message_max_length)
        self._guest = schemas.GuestAuth()

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self.upgrade)]

    async def lifetime(self, _app: web.Application) -> AsyncIterator[None]:
        """An aiohttp ``cleanup_ctx``: a WebSocket ping to every client each ping interval, so that proxies
        (whose idle timeouts would cut a quiet connection) keep them open and dead peers are found."""
        pinger = asyncio.get_running_loop().create_task(self._ping())
        yield
        pinger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pinger

    async def _ping(self) -> None:
        ping = frame(OP_PING, b"")
        while True:
            await asyncio.sleep(self.service.settings.ping_interval_seconds)
            for client in list(self.clients.values()):
                if client.wire is not None:
                    client.wire.send(ping)

    async def upgrade(self, request: web.Request) -> web.StreamResponse:
        """Check who connects, join them to the chat core, then take the connection over."""
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _refusal(
                ChatError(
                    errors.INVALID_PAYLOAD,
                    f"{PATH} is a WebSocket endpoint: connect with a WebSocket client, "
                    f"e.g. wscat -c 'ws://{request.host}{PATH}?userId=alice'",
                ),
                status=400,
            )
        manager = self.server.manager
        try:
            if not self.accepting():
                raise ChatError(errors.SHUTTING_DOWN, "the server is shutting down, reconnect")
            if not isinstance(manager, FastManager):
                raise ChatError(errors.UNAVAILABLE, f"{PATH} needs chatio's own Socket.IO manager")
            if self.connect_gate is not None:
                await self.connect_gate.check(request)
            identity = await self._identify(request)
        except ChatError as exc:
            return _refusal(exc)
        except Unavailable:
            return _refusal(ChatError(errors.UNAVAILABLE, "storage is unavailable, retry"))
        eio_sid = self.server.eio.generate_id()
        sid: str = await manager.connect(eio_sid, "/")
        client = PlainClient(self, sid, eio_sid, identity)
        await self.service.connect(sid, identity)
        await self.server.enter_room(sid, user_room(identity.user_id))
        settings = self.service.settings
        accepted, wire = accept_websocket(
            request,
            client.attach,
            max_size=settings.max_payload_bytes,
            max_backlog=settings.slow_consumer_max_queue,
            compress=settings.websocket_compression,
        )
        if wire is None:  # refused, or the client left during the handshake
            await client.forget()
        else:
            self.clients[sid] = client
            manager.foreign[eio_sid] = client
            if self.expiry is not None:
                self.expiry.watch(sid, identity.expires_at)
        return accepted

    async def _identify(self, request: web.Request) -> Identity:
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        token = request.query.get("token") or (bearer.strip() if scheme.lower() == "bearer" else "")
        if token:
            return await self.accounts.identify(token)
        if not self.service.settings.allow_guests:
            raise ChatError(
                errors.UNAUTHORIZED,
                f"authentication required: {PATH}?token=<access token> (this server does not allow guests)",
            )
        try:
            name = schemas.load(self._guest, {"username": request.query.get("userId")})["username"]
            user = await self.accounts.guest(name)
        except ChatError as exc:
            message = exc.message.replace("username", "userId").replace("Field may not be null", "Missing")
            raise ChatError(exc.code, message, field="userId") from None
        return Identity(user.id, user.username, True)


class PlainClient:
    """One ``/ws/chat`` connection: the wire's receiver and the manager's foreign participant."""

    def __init__(self, chat: PlainChat, sid: str, eio_sid: str, identity: Identity) -> None:
        self.chat = chat
        self.sid = sid
        self.eio_sid = eio_sid
        self.identity = identity
        self.wire: Wire | None = None
        self._gone = False

    def attach(self, wire: Wire) -> PlainClient:
        """Serve ``wire`` (called once the handshake is answered, before any frame is read)."""
        self.wire = wire
        return self

    # --- the wire's receiver ---------------------------------------------------------------------------

    async def on_message(self, data: str | bytes) -> None:
        if self._gone:
            return
        room: str | None = None
        try:
            if isinstance(data, bytes):
                raise ChatError(errors.INVALID_PAYLOAD, "send JSON in text frames, not binary")
            try:
                payload = jsontext.loads(data)
            except ValueError as exc:
                raise ChatError(errors.INVALID_PAYLOAD, f"not JSON: {exc}") from None
            if isinstance(payload, dict) and isinstance(payload.get("roomId"), str):
                room = payload["roomId"][:64]
            frame = schemas.load(self.chat._frame, payload)
            await self._command(frame)
        except ChatError as exc:
            self._send({"type": "ERROR", "roomId": room, **exc.as_wire()})
        except Unavailable:
            failure = ChatError(errors.UNAVAILABLE, "storage is unavailable, try again")
            self._send({"type": "ERROR", "roomId": room, **failure.as_wire()})
        except Exception:
            log.exception("a /ws/chat frame failed")
            self._send(
                {"type": "ERROR", "roomId": room, "code": errors.INTERNAL, "message": "internal error"}
            )

    async def on_lost(self) -> None:
        await self.forget()

    def on_overflow(self) -> None:
        log.warning("closing a plain WebSocket that reads too slowly (%s)", self.identity.username)
        if self.wire is not None:
            self.wire.drop_backlog()
        self.close(POLICY_VIOLATION, "you read too slowly; reconnect and ENTER with sinceSeq")

    # --- commands --------------------------------------------------------------------------------------

    async def _command(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "PING":
            return  # keeps the connection busy, as in seed 001; nothing is sent back
        if kind == "REFRESH":
            await self._refresh(frame["token"])
            return
        service, room = self.chat.service, frame["roomId"]
        if kind == "ENTER":
            joined = await service.join(self.sid, room, frame.get("sinceSeq"))
            self._send(
                {
                    **self._about(room),
                    "type": "ENTER",
                    "message": "",
                    "members": [m.user for m in joined.members],
                    "reset": joined.reset,
                }
            )
            for message in joined.history:
                self._send(_talk(message_wire(message)))
        elif kind == "TALK":
            message = await service.send(self.sid, room, frame["message"], frame.get("clientMsgId"))
            self._send(_talk(message_wire(message)))
        else:
            await service.leave(self.sid, room)
            self._send({**self._about(room), "type": "LEAVE", "message": ""})

    async def _refresh(self, token: str) -> None:
        """Carry on with a newer access token of the same user: the connection now ends with it."""
        identity = await self.chat.accounts.renew(self.identity, token)
        self.identity = self.chat.service.connection(self.sid).identity = identity
        if self.chat.expiry is not None:
            self.chat.expiry.watch(self.sid, identity.expires_at)
        self._send({"type": "REFRESH", "expiresAt": identity.expires_at_ms})

    def _about(self, room: str) -> dict[str, Any]:
        username = self.identity.username
        return {"roomId": room, "userId": username, "displayName": self.chat.service.names.of(username)}

    # --- the manager's foreign participant -------------------------------------------------------------

    def deliver(self, event: str, args: list[Any]) -> bool:
        data = args[0] if args else None
        if not isinstance(data, dict):
            return True
        if event == "message":
            return self._send(_talk(data))
        if event in ("user_joined", "user_left"):
            kind = "ENTER" if event == "user_joined" else "LEAVE"
            about = {
                "roomId": data.get("room"),
                "userId": data.get("user"),
                "displayName": data.get("displayName"),
            }
            return self._send({"type": kind, **about, "message": ""})
        if event == "server_shutdown":
            self.close(GOING_AWAY, "server shutting down, reconnect")
        elif event == "disconnect_reason":
            self.close(POLICY_VIOLATION, f"{data.get('code')}: {data.get('message', '')}")
        return True

    # --- lifetime --------------------------------------------------------------------------------------

    def _send(self, frame: dict[str, Any]) -> bool:
        wire = self.wire
        return wire is not None and bool(wire.send(text_frame(_dumps(frame).encode())))

    def close(self, code: int, reason: str) -> None:
        if self.wire is not None:
            self.wire.close(code, reason)

    async def forget(self) -> None:
        """Leave the chat core and the manager (once), when the connection ends."""
        if self._gone:
            return
        self._gone = True
        chat = self.chat
        chat.clients.pop(self.sid, None)
        if chat.expiry is not None:
            chat.expiry.forget(self.sid)
        manager = chat.server.manager
        if isinstance(manager, FastManager):
            manager.foreign.pop(self.eio_sid, None)
        try:
            await chat.service.disconnect(self.sid)
        finally:
            await manager.disconnect(self.sid, "/", ignore_queue=True)


def _talk(message: dict[str, Any]) -> dict[str, Any]:
    """A ``message`` as seed 001's TALK frame, with what a plain client needs to order and de-duplicate."""
    return {
        "type": "TALK",
        "roomId": message.get("room"),
        "userId": message.get("user"),
        "displayName": message.get("displayName"),
        "message": message.get("text"),
        "id": message.get("id"),
        "seq": message.get("seq"),
        "ts": message.get("ts"),
        "clientMsgId": message.get("clientMsgId"),
    }


def _refusal(error: ChatError, status: int | None = None) -> web.Response:
    return web.json_response(
        {"error": error.as_wire()}, status=status or _STATUS.get(error.code, 500), dumps=_dumps
    )
