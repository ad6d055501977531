"""chatio's Engine.IO v4 server: the HTTP rules, the handshake, long-polling, the WebSocket and its upgrade.

Written from the engine.io-protocol specification (version 4) and served by aiohttp; python-socketio's
``AsyncServer`` runs on it through its ``_engineio_server_class()`` hook (:mod:`chatio.transport.seam`),
calling what an Engine.IO server offers it: ``on``, ``send``, ``send_packet``, ``disconnect``,
``get_session``/``save_session``, ``transport``, ``generate_id``, ``start_background_task``, ``sleep``,
``create_event``, ``attach``, ``handle_request`` and ``shutdown``.

The HTTP rules: a request names ``EIO=4`` and a known ``transport`` (else 400, code 5 or 0); a request
without ``sid`` is a handshake and must be a GET (else 400, code 2); an unknown ``sid`` gets 400 (code 1);
a request for another transport than its session's, a method other than GET/POST/OPTIONS, a malformed
payload, a second pending GET or an overlapping POST gets 400 (code 3) and the last three close the
session (the pending GET is answered with CLOSE). A pending GET whose client closed its connection is not
pending any more: aiohttp keeps its handler waiting (it cancels handlers only with ``handler_cancellation``,
which would cancel every handler, POSTs whose packets were accepted included), so the engine checks the
request's connection (``request.transport``) when a GET comes and when a waiting one wakes: the new GET is
served, and the abandoned one ends without taking what waits. A POST body is read with a deadline and
bounded by ``maxPayload`` (413, and the session closes); it is answered ``ok``. Every refusal is JSON
``{"code": n, "message": "..."}``. CORS follows ``cors_allowed_origins`` (None: same origin only); the
handshake sets the ``io`` cookie when asked.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

import orjson
from aiohttp import web

from chatio.rfc6455 import NORMAL
from chatio.transport.eio import MESSAGE, NOOP, OPEN, Encoded, Probe, Session, adopt
from chatio.transport.frames import text_frame
from chatio.transport.http import (
    BAD_HANDSHAKE_METHOD,
    BAD_REQUEST,
    FORBIDDEN,
    UNKNOWN_SID,
    UNKNOWN_TRANSPORT,
    UNSUPPORTED_PROTOCOL,
    GoingAway,
    TooLarge,
    closing,
    environ_of,
    read_body,
    refusal,
    session_cookie,
)
from chatio.transport.payload import decode_payload, encode_payload
from chatio.transport.pinger import Pinger
from chatio.transport.seam import take_over
from chatio.transport.wire import Detached, Wire, handshake

log = logging.getLogger(__name__)

TRANSPORTS: Final = ("polling", "websocket")
#: How long a long-polling POST may take to arrive whole.
BODY_TIMEOUT_SECONDS: Final = 10.0
#: How long a poll waits while its session's upgrade probe is answered (engine.io's server: 100 ms).
UPGRADE_POLL_SECONDS: Final = 0.1

#: ``admit(environ)``: None to accept a new session, else why it is refused (HTTP 429).
Admission = Callable[[dict[str, Any]], Awaitable[str | None]]
Handler = Callable[..., Coroutine[Any, Any, Any]]


class Reason:
    """Why a session ended, as python-socketio's disconnect handlers are told."""

    SERVER_DISCONNECT: Final = "server disconnect"
    CLIENT_DISCONNECT: Final = "client disconnect"
    PING_TIMEOUT: Final = "ping timeout"
    TRANSPORT_CLOSE: Final = "transport close"
    TRANSPORT_ERROR: Final = "transport error"


class EngineServer:
    """An Engine.IO v4 server for python-socketio; see the module docstring."""

    reason = Reason
    async_mode: Final = "aiohttp"

    def __init__(
        self,
        *,
        ping_interval: float = 25,
        ping_timeout: float = 20,
        max_http_buffer_size: int = 1_000_000,
        cors_allowed_origins: str | list[str] | None = None,
        cookie: dict[str, Any] | None = None,
        websocket_compression: bool = False,
        connect_timeout: float = 45,
        body_timeout: float = BODY_TIMEOUT_SECONDS,
        **_ignored: Any,
    ) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_payload = max_http_buffer_size
        self.cors_allowed_origins = cors_allowed_origins
        self.cookie = cookie
        self.websocket_compression = websocket_compression
        self.body_timeout = body_timeout
        self.sessions: dict[str, Session] = {}
        self.handlers: dict[str, Handler] = {}
        #: Packets a session may have waiting (0: no bound); ``on_overflow(sid)`` hears of one that has.
        self.max_backlog = 0
        self.on_overflow: Callable[[str], None] | None = None
        #: Who accepts or refuses a new session, who hears of a bad packet, who says a session has joined.
        self.admit: Admission | None = None
        self.on_bad_packet: Callable[[], None] | None = None
        self.joined_namespace: Callable[[str], bool] = lambda _sid: True
        self.pinger = Pinger(ping_interval, ping_timeout, connect_timeout, self)

    # --- what python-socketio calls ---------------------------------------------------------------------

    def on(self, event: str, handler: Handler) -> None:
        self.handlers[event] = handler

    def attach(self, app: web.Application, engineio_path: str = "engine.io") -> None:
        app.router.add_route("*", f"/{engineio_path.strip('/')}/", self.handle_request)

    async def send(self, sid: str, data: str | bytes) -> None:
        session = self.sessions.get(sid)
        if session is not None:
            session.send(MESSAGE + data if isinstance(data, str) else data)

    async def send_packet(self, sid: str, pkt: Any) -> None:
        """Send one of python-engineio's ``Packet`` objects (python-socketio's manager builds them)."""
        session = self.sessions.get(sid)
        if session is not None:
            session.send(pkt.encode())

    async def disconnect(self, sid: str | None = None) -> None:
        targets = (
            [self.sessions[sid]] if sid in self.sessions else [] if sid else list(self.sessions.values())
        )
        for session in targets:
            await session.close(Reason.SERVER_DISCONNECT)

    async def get_session(self, sid: str) -> dict[str, Any]:
        session = self.sessions[sid]
        if session.session is None:
            session.session = {}
        return session.session

    async def save_session(self, sid: str, data: dict[str, Any]) -> None:
        self.sessions[sid].session = data

    def transport(self, sid: str) -> str:
        return self.sessions[sid].transport

    def generate_id(self) -> str:
        return secrets.token_urlsafe(15)

    def start_background_task(
        self, target: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        return asyncio.ensure_future(target(*args, **kwargs))

    async def sleep(self, seconds: float = 0) -> None:
        await asyncio.sleep(seconds)

    def create_event(self) -> asyncio.Event:
        return asyncio.Event()

    def create_queue(self, *args: Any, **kwargs: Any) -> asyncio.Queue[Any]:
        return asyncio.Queue(*args, **kwargs)

    async def shutdown(self) -> None:
        self.pinger.stop()
        await self.disconnect()

    # --- what sessions call -----------------------------------------------------------------------------

    async def dispatch(self, session: Session, data: Encoded) -> None:
        handler = self.handlers.get("message")
        if handler is not None:
            try:
                await handler(session.sid, data)
            except ValueError:
                raise
            except Exception as exc:
                log.exception("handling a packet of session %s failed", session.sid)
                raise ValueError(f"a packet that could not be handled ({type(exc).__name__})") from exc

    async def ended(self, session: Session, reason: str) -> None:
        if self.sessions.get(session.sid) is session:
            if session.queue and session.wire is None and session.poll is None:
                # A CLOSE (or NOOP) waits for the client's next poll: the session answers it, or goes
                # once the client could have asked.
                loop = asyncio.get_running_loop()
                loop.call_later(self.ping_interval + self.ping_timeout, self._forget, session)
            else:
                del self.sessions[session.sid]
        handler = self.handlers.get("disconnect")
        if handler is None:
            return
        if session.busy:  # after the commands the client sent before its session ended
            session.in_order(handler(session.sid, reason))
        else:
            await handler(session.sid, reason)

    def _forget(self, session: Session) -> None:
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]

    def overflowed(self, session: Session) -> None:
        if self.on_overflow is not None:
            self.on_overflow(session.sid)

    def bad_packet(self) -> None:
        if self.on_bad_packet is not None:
            self.on_bad_packet()

    def joined(self, session: Session) -> bool:
        return self.joined_namespace(session.sid)

    def compressed(self) -> bool:
        return self.websocket_compression

    # --- HTTP -------------------------------------------------------------------------------------------

    async def handle_request(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        cors = self._cors(request)
        if cors is None:
            return refusal(BAD_REQUEST, {}, context="not an accepted origin")
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=cors)
        if query.get("EIO") != "4":
            return refusal(UNSUPPORTED_PROTOCOL, cors)
        transport = query.get("transport")
        if transport not in TRANSPORTS:
            return refusal(UNKNOWN_TRANSPORT, cors)
        sid = query.get("sid")
        if sid is None:
            if request.method != "GET":
                return refusal(BAD_HANDSHAKE_METHOD, cors)
            return await self._open(request, transport, cors)
        session = self.sessions.get(sid)
        last_poll = (
            transport == "polling" and request.method == "GET" and session is not None and session.queue
        )
        if session is None or (session.closed and not last_poll):
            return refusal(UNKNOWN_SID, cors)
        if session.closed:  # the last poll of a closed session: what waited, then CLOSE
            self._forget(session)
            return self._poll_answer(session, cors)
        if transport == "websocket":
            if request.method != "GET":
                return refusal(BAD_REQUEST, cors)
            return await self._upgrade(request, session, cors)
        if session.wire is not None:
            return refusal(BAD_REQUEST, cors, context="the session is on a WebSocket")
        if request.method == "GET":
            return await self._long_poll(request, session, cors)
        if request.method == "POST":
            return await self._post(request, session, cors)
        return refusal(BAD_REQUEST, cors, context="GET or POST only")

    def _cors(self, request: web.Request) -> dict[str, str] | None:
        """The CORS headers for the request, or None when its Origin is not accepted."""
        origin = request.headers.get("Origin")
        if origin is None:
            return {}
        allowed = self.cors_allowed_origins
        if allowed is None:
            accepted = origin in (f"{request.scheme}://{request.host}", f"http://{request.host}")
        else:
            accepted = allowed == "*" or origin in allowed
        if not accepted:
            return None
        headers = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}
        if request.method == "OPTIONS":
            headers["Access-Control-Allow-Methods"] = "OPTIONS, GET, POST"
            wanted = request.headers.get("Access-Control-Request-Headers")
            if wanted:
                headers["Access-Control-Allow-Headers"] = wanted
        return headers

    async def _open(self, request: web.Request, transport: str, cors: dict[str, str]) -> web.StreamResponse:
        environ = environ_of(request)
        if transport == "websocket" and request.headers.get("Upgrade", "").lower() != "websocket":
            return refusal(BAD_REQUEST, cors, context="expected a WebSocket upgrade")
        if self.admit is not None:
            refused = await self.admit(environ)
            if refused is not None:
                return refusal(FORBIDDEN, cors, status=429, context=refused)
        sid = self.generate_id()
        session = Session(self, sid, environ)
        opened = (
            OPEN
            + orjson.dumps(
                {
                    "sid": sid,
                    "upgrades": ["websocket"] if transport == "polling" else [],
                    "pingInterval": round(self.ping_interval * 1000),
                    "pingTimeout": round(self.ping_timeout * 1000),
                    "maxPayload": self.max_payload,
                }
            ).decode()
        )
        headers = dict(cors)
        if self.cookie:
            headers["Set-Cookie"] = session_cookie(self.cookie, sid)
        self.sessions[sid] = session
        handler = self.handlers.get("connect")
        if handler is not None and await handler(sid, environ) is False:
            await session.close(Reason.SERVER_DISCONNECT, notify=False)
            return refusal(FORBIDDEN, cors, status=403)
        if transport == "polling":
            session.enqueue(opened)
            self.pinger.add(session)
            return self._poll_answer(session, cors, headers.get("Set-Cookie"))
        taken = self._take(request, headers)
        if isinstance(taken, web.StreamResponse):
            await session.close(Reason.TRANSPORT_CLOSE, notify=False)
            return taken
        wire, tail = taken
        adopt(session, wire)
        wire.send(text_frame(opened.encode()))
        self.pinger.add(session)
        if tail:
            wire.data_received(tail)
        return Detached()

    def _take(self, request: web.Request, headers: dict[str, str]) -> tuple[Wire, bytes] | web.StreamResponse:
        """Answer the WebSocket handshake and take the TCP connection from aiohttp, or the refusal.

        With the wire come the bytes that arrived after the request: they go to ``wire.data_received``
        once its receiver is set."""
        answer = handshake(request, compress=self.websocket_compression, headers=headers)
        if isinstance(answer, web.StreamResponse):
            return answer
        response, deflate = answer
        wire = Wire(max_size=self.max_payload, max_backlog=self.max_backlog, deflate=deflate)
        try:
            tail = take_over(request, wire, response)
        except ConnectionResetError:  # the client left during the handshake
            return Detached()
        return wire, tail

    async def _upgrade(
        self, request: web.Request, session: Session, cors: dict[str, str]
    ) -> web.StreamResponse:
        taken = self._take(request, cors)
        if isinstance(taken, web.StreamResponse):
            return taken
        wire, tail = taken
        if session.wire is not None or session.probe is not None or session.closed:
            # Engine.IO allows one upgrade per session: this WebSocket ends, the session carries on.
            wire.receiver = _Refused()
            wire.close(NORMAL, "the session is already upgraded")
            return Detached()
        session.probe = probe = Probe(session, wire)
        wire.receiver = probe
        if tail:
            wire.data_received(tail)
        return Detached()

    async def _long_poll(
        self, request: web.Request, session: Session, cors: dict[str, str]
    ) -> web.StreamResponse:
        pending = session.poll
        if pending is not None:
            if _open(session.poll_connection):
                # One pending GET per session: a second one closes it; the first gets the CLOSE packet.
                await session.close(Reason.TRANSPORT_ERROR)
                return refusal(BAD_REQUEST, cors, context="overlapping GET requests")
            # The pending GET's client went away (aiohttp does not cancel its handler): this one takes
            # its place, and the abandoned one ends without taking anything.
            session.poll = session.poll_connection = None
            if not pending.done():
                pending.set_result(None)
        if not session.queue:
            loop = asyncio.get_running_loop()
            session.poll = poll = loop.create_future()
            session.poll_connection = request.transport
            probe = session.probe
            # A client that read the NOOP before its 3probe polls once more, and pauses polling (then sends
            # 5) only when that poll ends: while a probe is answered, a poll ends soon, with a NOOP.
            release = (
                loop.call_later(UPGRADE_POLL_SECONDS, _release, session)
                if probe is not None and probe.probed
                else None
            )
            try:
                await poll
            finally:
                if release is not None:
                    release.cancel()
                if session.poll is poll:
                    session.poll = session.poll_connection = None
            if session.queue is None and session.closed:
                raise GoingAway()  # ended without a CLOSE packet: the client sees its transport fail
            if not _open(request.transport):
                # The client left while this GET waited: what woke it waits for the client's next GET.
                raise GoingAway()
        return self._poll_answer(session, cors)

    def _poll_answer(self, session: Session, cors: dict[str, str], cookie: str | None = None) -> web.Response:
        packets = session.take() if session.queue is not None else []
        if not packets and session.wire is not None:
            packets = [NOOP]  # the session moved to its WebSocket while this poll waited
        headers = dict(cors)
        if cookie is not None:
            headers["Set-Cookie"] = cookie
        return web.Response(
            text=encode_payload(packets), content_type="text/plain", charset="utf-8", headers=headers
        )

    async def _post(self, request: web.Request, session: Session, cors: dict[str, str]) -> web.StreamResponse:
        if session.posting:
            await session.close(Reason.TRANSPORT_ERROR)
            return refusal(BAD_REQUEST, cors, context="overlapping POST requests")
        session.posting = True
        try:
            try:
                body = await asyncio.wait_for(read_body(request, self.max_payload), self.body_timeout)
                packets = decode_payload(body.decode())
            except TooLarge:
                await session.close(Reason.TRANSPORT_ERROR)
                return closing(refusal(BAD_REQUEST, cors, status=413, context="payload too large"))
            except TimeoutError:
                await session.close(Reason.TRANSPORT_ERROR)
                return closing(refusal(BAD_REQUEST, cors, status=408, context="the body came too slowly"))
            except ValueError as exc:  # not UTF-8, or not a payload
                await session.refuse(exc)
                return refusal(BAD_REQUEST, cors, context="malformed payload")
            for packet in packets:
                if session.closed:
                    break
                if not await session.take_in(packet):
                    return refusal(BAD_REQUEST, cors, context="malformed packet")
        finally:
            session.posting = False
        return web.Response(text="ok", content_type="text/html", headers=cors)


def _open(connection: asyncio.BaseTransport | None) -> bool:
    """Whether a request's connection can still carry its answer (aiohttp drops it once it is lost)."""
    return connection is not None and not connection.is_closing()


def _release(session: Session) -> None:
    """End the pending poll of a session whose upgrade is under way with a NOOP."""
    poll = session.poll
    if not session.closed and session.queue is not None and poll is not None and not poll.done():
        session.enqueue(NOOP)


class _Refused:
    """The receiver of a WebSocket refused after its handshake: it hears nothing."""

    async def on_message(self, data: str | bytes) -> None:
        return None

    async def on_lost(self) -> None:
        return None

    def on_overflow(self) -> None:
        return None
