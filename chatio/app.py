"""The composition root: ``create_app`` alone builds concrete parts; tests pass their own in.

Nothing is built at import time. ``create_app`` reads as the table of contents of a server: choose the
backends (:mod:`chatio.backends`), build the Socket.IO server, the chat core and its namespace, then
readiness, the application's keys (:mod:`chatio.keys`), its routes and the lifetimes of its parts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import web

from chatio.accounts.identity import Authenticator
from chatio.accounts.passwords import Passwords
from chatio.accounts.service import AccountService, TokenAuthenticator
from chatio.accounts.tokens import AccessTokens, random_secret
from chatio.backends import Backends, choose_backends
from chatio.chat.access import RoomAccess
from chatio.chat.moderation import LocalSignals, Moderation, Signals
from chatio.chat.retention import RetentionSweeper
from chatio.chat.service import ChatService
from chatio.config import Settings
from chatio.health import Health
from chatio.keys import (
    ACCESS,
    ACCOUNTS,
    AUTH_GATE,
    HEALTH,
    METRICS,
    MODERATION,
    NAMESPACE,
    SERVER,
    SERVICE,
    SETTINGS,
    STARTED,
)
from chatio.metrics import Metrics
from chatio.presence import Presence
from chatio.ratelimit import RateLimiter
from chatio.ratelimit.gate import Gate
from chatio.realtime.endings import account_deleted, session_ended
from chatio.realtime.namespace import ChatNamespace
from chatio.realtime.outbox import SocketOutbox
from chatio.realtime.plainchat import PlainChat
from chatio.store import Store
from chatio.store.access import AccessStore
from chatio.store.accounts import AccountStore
from chatio.transport import ChatServer
from chatio.web import rest_routes
from chatio.web.operations import operation_routes
from chatio.web.page import page_headers, page_routes

log = logging.getLogger(__name__)

SHUTDOWN_NOTICE: Final = {"reason": "server shutting down", "reconnectAfterMs": 1000}


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    presence: Presence | None = None,
    limiter: RateLimiter | None = None,
    authenticator: Authenticator | None = None,
    client_manager: Any = None,
    accounts: AccountStore | None = None,
    access: AccessStore | None = None,
    passwords: Passwords | None = None,
) -> web.Application:
    """Wire the server. Every keyword argument replaces the part the settings would choose."""
    backends = choose_backends(
        settings, store=store, accounts=accounts, access=access, presence=presence, limiter=limiter
    )
    metrics = Metrics(settings.pod_name)
    server = socketio_server(settings, client_manager or backends.manager(metrics), metrics)
    core = Core.build(settings, backends, SocketOutbox(server), passwords or Passwords())
    namespace = realtime(settings, backends, core, server, metrics, authenticator)
    plain = plain_websocket(core, server, namespace)
    health = readiness(backends, server, core)

    app = web.Application()
    app[SETTINGS], app[SERVER], app[NAMESPACE], app[HEALTH], app[METRICS] = (
        settings,
        server,
        namespace,
        health,
        metrics,
    )
    app[SERVICE], app[ACCOUNTS], app[ACCESS] = core.chat, core.accounts, core.access
    app[MODERATION] = core.moderation
    app[AUTH_GATE] = _gate("auth", settings.auth_rate_per_minute, settings, backends)
    app[STARTED] = time.monotonic()

    app.on_response_prepare.append(page_headers)
    server.attach(app, socketio_path="socket.io")
    app.add_routes(
        [*operation_routes(health), *rest_routes(), *plain.routes(), *page_routes(settings.static_dir)]
    )

    app.cleanup_ctx.append(backends.lifetime)
    app.cleanup_ctx.append(core.lifetime(namespace))
    app.cleanup_ctx.append(plain.lifetime)
    if backends.cluster is not None:
        app.cleanup_ctx.append(backends.cluster.lifetime)
    return app


def plain_websocket(core: Core, server: ChatServer, namespace: ChatNamespace) -> PlainChat:
    """``/ws/chat`` (seed 001's protocol) on the same chat core, manager and limits as the namespace."""
    return PlainChat(
        core.chat,
        core.accounts,
        server,
        accepting=lambda: namespace.accepting,
        connect_gate=namespace.connect_gate,
        expiry=namespace.expiry,
    )


def socketio_server(settings: Settings, client_manager: Any, metrics: Metrics) -> ChatServer:
    """python-socketio's server on chatio's transport, configured from the settings.

    The commands of one connection run one after another (a client's messages get increasing seq in the
    order sent, and a flood waits for itself): the transport orders them, so ``async_handlers`` stays on
    and every python-socketio feature (``call()`` included) works."""
    server = ChatServer(
        async_mode="aiohttp",
        client_manager=client_manager,
        cors_allowed_origins=list(settings.cors_origins) or None,
        ping_interval=settings.ping_interval_seconds,
        ping_timeout=settings.ping_timeout_seconds,
        max_http_buffer_size=settings.max_payload_bytes,
        websocket_compression=settings.websocket_compression,
        connect_timeout=settings.connect_timeout_seconds,
        logger=False,
        engineio_logger=False,
        # The Engine.IO session id as a cookie on the handshake: a load balancer can keep a long-polling
        # session on its process by it (HAProxy: tools/haproxy.cfg.template).
        cookie={"name": "io", "path": "/", "SameSite": "Lax", "HttpOnly": True},
    )
    server.max_queue = settings.slow_consumer_max_queue
    server.eio.on_bad_packet = metrics.bad_packets.inc
    return server


@dataclasses.dataclass(frozen=True, slots=True)
class Core:
    """The chat core and the account service: what decides, whichever transport asks."""

    chat: ChatService
    access: RoomAccess
    accounts: AccountService
    outbox: SocketOutbox
    moderation: Moderation
    retention: RetentionSweeper
    #: Notices every process acts on: moderation, and accounts deleted and sessions ended.
    signals: Signals

    @classmethod
    def build(
        cls, settings: Settings, backends: Backends, outbox: SocketOutbox, passwords: Passwords
    ) -> Core:
        access = RoomAccess(backends.store, backends.access, backends.accounts, outbox)
        chat = ChatService(settings, backends.store, backends.presence, backends.limiter, outbox, access)
        accounts = AccountService(settings, backends.store, backends.accounts, passwords, _tokens(settings))
        accounts.on_deleted.append(access.forget_user)
        # Moderation reaches every process's sockets through the cluster's signals (this process alone
        # without Redis).
        signals = backends.cluster.signals if backends.cluster is not None else LocalSignals()
        signals.handlers.append(chat.apply)
        chat.changes.audit = backends.access.record
        moderation = Moderation(access, backends.accounts, signals, outbox)
        retention = RetentionSweeper(
            backends.store,
            default_days=settings.retention_days,
            interval_seconds=settings.retention_sweep_seconds,
        )
        return cls(chat, access, accounts, outbox, moderation, retention, signals)

    def lifetime(self, namespace: ChatNamespace) -> Any:
        """An aiohttp ``cleanup_ctx``: the retention sweeper runs while the server does; the core's timers
        (typing, token expiry) stop at the end."""

        async def lifetime(_app: web.Application) -> AsyncIterator[None]:
            self.retention.start()
            yield
            await self.retention.close()
            self.chat.close()
            namespace.close()

        return lifetime


def realtime(
    settings: Settings,
    backends: Backends,
    core: Core,
    server: ChatServer,
    metrics: Metrics,
    authenticator: Authenticator | None,
) -> ChatNamespace:
    """The Socket.IO namespace on ``server``, told when accounts are deleted, sessions end, or a client
    stops reading."""
    namespace = ChatNamespace(
        core.chat,
        authenticator or TokenAuthenticator(core.accounts),
        metrics,
        settings.pod_name,
        accounts=core.accounts,
        access=core.access,
        moderation=core.moderation,
        connect_gate=_gate("connect", settings.connect_rate_per_minute, settings, backends),
    )
    metrics.watch(
        lambda: core.chat.connection_count,
        lambda: core.chat.local_room_count,
        lambda: len(server.eio.sessions),
    )
    # A deleted account's and an ended session's connections close on every process: a signal tells each.
    core.signals.handlers.append(namespace.endings.apply)
    core.accounts.on_deleted.append(lambda user_id: core.signals.publish(account_deleted(user_id)))
    core.accounts.on_session_ended.append(lambda session: core.signals.publish(session_ended(session)))
    server.register_namespace(namespace)
    server.on_overflow = namespace.overflowed
    server.eio.admit = namespace.admit
    return namespace


def readiness(backends: Backends, server: ChatServer, core: Core) -> Health:
    """``/readyz``: the store, and with Redis, presence and pub/sub (which also get their wiring here)."""
    health = Health()
    health.add_check("store", backends.store.ping)
    if backends.cluster is not None:
        backends.cluster.attach(
            manager=server.manager,
            presence=core.chat.presence,
            outbox=core.outbox,
            store=backends.store,
            health=health,
        )
    return health


def _gate(name: str, rate: int, settings: Settings, backends: Backends) -> Gate:
    return Gate(name, backends.address_limiter(rate), rate, settings.trusted_proxy_hops)


def _tokens(settings: Settings) -> AccessTokens:
    if settings.jwt_secret is None:
        # Embedded (one process, no Redis), a key of its own is fine; in a cluster it breaks logins.
        level = logging.INFO if settings.redis_url is None else logging.WARNING
        log.log(
            level,
            "CHATIO_JWT_SECRET is not set: access tokens are signed with a random key of this process; "
            "they end with it, and other processes do not accept them",
        )
        return AccessTokens(random_secret(), settings.access_token_ttl_seconds)
    return AccessTokens(settings.jwt_secret.reveal(), settings.access_token_ttl_seconds)


async def drain(app: web.Application) -> None:
    """Shutdown, step by step: readiness 503, wait, refuse new work, tell every client, close transports.

    Closing the transports (rather than a Socket.IO disconnect) makes socket.io clients reconnect by
    themselves, to another process behind the balancer, and catch up with ``join_room {sinceSeq}``.
    """
    settings, server, namespace = app[SETTINGS], app[SERVER], app[NAMESPACE]
    app[HEALTH].draining = True
    if settings.drain_delay_seconds:
        log.info("draining: /readyz answers 503 for %.1fs", settings.drain_delay_seconds)
        await asyncio.sleep(settings.drain_delay_seconds)
    namespace.accepting = False
    count = app[SERVICE].connection_count
    log.info("telling %d clients the server shuts down", count)
    # ignore_queue: only this process's clients; with Redis, a plain emit would reach every pod's.
    await server.emit("server_shutdown", SHUTDOWN_NOTICE, ignore_queue=True)
    await server.close_transports()
    log.info("closed the transports of %d clients", count)
