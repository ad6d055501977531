"""The composition root: ``create_app`` alone builds concrete parts; tests pass their own in.

Nothing is built at import time. Backends follow the settings: the in-memory store unless
``CHATIO_MONGODB_URI`` is set; the in-process Socket.IO manager, presence and rate limits unless
``CHATIO_REDIS_URL`` is set, and then their Redis drivers (``chatio/cluster.py``). The account and
room-access stores follow the store; ``CHATIO_MESSAGE_KEY`` wraps the store in encryption at rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import web

from chatio.accounts.identity import Authenticator
from chatio.accounts.passwords import Passwords
from chatio.accounts.service import AccountService, TokenAuthenticator
from chatio.accounts.tokens import AccessTokens, random_secret
from chatio.chat.access import RoomAccess
from chatio.chat.service import ChatService
from chatio.cluster import Cluster
from chatio.config import Settings
from chatio.health import Health
from chatio.metrics import CONTENT_TYPE, Metrics
from chatio.presence import MemoryPresence, Presence
from chatio.ratelimit import RateLimiter, TokenBucketLimiter
from chatio.ratelimit.gate import Gate
from chatio.ratelimit.redis import RedisRateLimiter
from chatio.realtime.namespace import ChatNamespace, SocketOutbox
from chatio.store import Store
from chatio.store.access import AccessStore
from chatio.store.access_memory import MemoryAccessStore
from chatio.store.accounts import AccountStore
from chatio.store.accounts_memory import MemoryAccountStore
from chatio.store.cipher import MessageCipher
from chatio.store.encrypted import EncryptingStore
from chatio.store.memory import MemoryStore
from chatio.store.mongo_base import mongo_client
from chatio.transport import ChatServer, FastManager
from chatio.transport.fanout import ClusterManager
from chatio.web import api
from chatio.web.accounts import AccountsApi
from chatio.web.auth import ACCESS, ACCOUNTS, AUTH_GATE

log = logging.getLogger(__name__)

SETTINGS: Final = web.AppKey("settings", Settings)
SERVER: Final = web.AppKey("socketio_server", ChatServer)
NAMESPACE: Final = web.AppKey("namespace", ChatNamespace)
HEALTH: Final = web.AppKey("health", Health)
METRICS: Final = web.AppKey("metrics", Metrics)

SHUTDOWN_NOTICE: Final = {"reason": "server shutting down", "reconnect_after_ms": 1000}
_PAGE_POLICY: Final = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


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
    store = store or _store_for(settings)
    if settings.message_key is not None:
        store = EncryptingStore(store, MessageCipher.from_setting(settings.message_key.reveal()))
    auth_stores = _AuthStores(settings, accounts, access)
    metrics = Metrics(settings.pod_name)
    cluster = None if settings.redis_url is None else Cluster(settings)
    server = ChatServer(
        async_mode="aiohttp",
        client_manager=client_manager or _manager_for(settings, metrics),
        # Sequential handling per connection keeps each client's commands in order (a client's
        # messages get increasing seq in the order sent) and gives natural backpressure to floods.
        async_handlers=False,
        cors_allowed_origins=list(settings.cors_origins) or None,
        ping_interval=settings.ping_interval_seconds,
        ping_timeout=settings.ping_timeout_seconds,
        max_http_buffer_size=settings.max_payload_bytes,
        websocket_compression=settings.websocket_compression,
        logger=False,
        engineio_logger=False,
        # The Engine.IO session id as a cookie on the handshake: a load balancer can keep a long-polling
        # session on its process by it (HAProxy: tools/haproxy.cfg.template).
        cookie={"name": "io", "path": "/", "SameSite": "Lax", "HttpOnly": True},
    )
    outbox = SocketOutbox(server)
    room_access = RoomAccess(store, auth_stores.access, auth_stores.accounts, outbox)
    service = ChatService(
        settings,
        store,
        presence or (cluster.presence if cluster else MemoryPresence(settings.pod_name)),
        limiter or (cluster.limiter if cluster else TokenBucketLimiter(settings.rate_limit_per_minute)),
        outbox,
        room_access,
    )
    account_service = AccountService(
        settings, store, auth_stores.accounts, passwords or Passwords(), _access_tokens(settings)
    )
    hops = settings.trusted_proxy_hops
    namespace = ChatNamespace(
        service,
        authenticator or TokenAuthenticator(account_service),
        metrics,
        settings.pod_name,
        accounts=account_service,
        access=room_access,
        connect_gate=Gate(
            "connect",
            _address_limiter(settings, cluster, settings.connect_rate_per_minute),
            settings.connect_rate_per_minute,
            hops,
        ),
    )
    server.register_namespace(namespace)
    metrics.watch(lambda: service.connection_count, lambda: service.local_room_count)
    account_service.on_deleted += [room_access.forget_user, namespace.end_user]
    account_service.on_session_ended.append(namespace.end_session)
    server.max_queue = settings.slow_consumer_max_queue
    server.on_overflow = namespace.overflowed

    health = Health()
    health.add_check("store", store.ping)
    if cluster is not None:
        cluster.attach(
            manager=server.manager, presence=service.presence, outbox=outbox, store=store, health=health
        )

    app = web.Application()
    app.on_response_prepare.append(_page_headers)
    app[SETTINGS] = settings
    app[SERVER] = server
    app[NAMESPACE] = namespace
    app[HEALTH] = health
    app[METRICS] = metrics
    app[api.SERVICE] = service
    app[api.STARTED] = time.monotonic()
    app[ACCOUNTS] = account_service
    app[ACCESS] = room_access
    app[AUTH_GATE] = Gate(
        "auth",
        _address_limiter(settings, cluster, settings.auth_rate_per_minute),
        settings.auth_rate_per_minute,
        hops,
    )
    server.attach(app, socketio_path="socket.io")
    app.add_routes(health.routes())
    app.add_routes(api.guarded_routes(AccountsApi().routes()))  # before ChatApi's catch-all 404
    app.add_routes(api.guarded_routes(api.ChatApi().routes()))
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/", _index)
    app.router.add_static("/", settings.static_dir, follow_symlinks=False)
    app.cleanup_ctx.append(_store_lifetime)
    app.cleanup_ctx.append(auth_stores.lifetime)
    if cluster is not None:
        app.cleanup_ctx.append(cluster.lifetime)
    return app


def _store_for(settings: Settings) -> Store:
    if settings.mongodb_uri is None:
        return MemoryStore()
    from chatio.store.mongo import MongoStore

    return MongoStore.from_settings(settings)


def _manager_for(settings: Settings, metrics: Metrics) -> Any:
    def delivered(event: str, count: int) -> None:
        if event == "message":
            metrics.messages_broadcast.inc(count)

    if settings.redis_url is None:
        return FastManager(fast=settings.fast_broadcast, on_delivered=delivered)
    return ClusterManager(
        settings.redis_url.reveal(),
        channel=settings.redis_prefix,
        timeout=settings.redis_timeout_seconds,
        fast=settings.fast_broadcast,
        on_delivered=delivered,
    )


async def _store_lifetime(app: web.Application) -> AsyncIterator[None]:
    service = app[api.SERVICE]
    await service.store.start()
    yield
    service.close()
    app[NAMESPACE].expiry.close()
    await service.store.close()


class _AuthStores:
    """The account and room-access stores: given, or chosen like the store, sharing one MongoDB client."""

    def __init__(self, settings: Settings, accounts: AccountStore | None, access: AccessStore | None) -> None:
        self._client = None
        if settings.mongodb_uri is not None and (accounts is None or access is None):
            from chatio.store.access_mongo import MongoAccessStore
            from chatio.store.accounts_mongo import MongoAccountStore

            client = self._client = mongo_client(
                settings.mongodb_uri.reveal(), timeout_seconds=settings.store_timeout_seconds
            )
            options: dict[str, Any] = {
                "timeout_seconds": settings.store_timeout_seconds,
                "write_concern": settings.mongodb_write_concern,
            }
            accounts = accounts or MongoAccountStore(client, settings.mongodb_database, **options)
            access = access or MongoAccessStore(client, settings.mongodb_database, **options)
        self.accounts: AccountStore = accounts or MemoryAccountStore()
        self.access: AccessStore = access or MemoryAccessStore()

    async def lifetime(self, _app: web.Application) -> AsyncIterator[None]:
        await self.accounts.start()
        await self.access.start()
        yield
        await self.access.close()
        await self.accounts.close()
        if self._client is not None:
            await self._client.close()


def _access_tokens(settings: Settings) -> AccessTokens:
    if settings.jwt_secret is None:
        log.warning(
            "CHATIO_JWT_SECRET is not set: access tokens are signed with a random key of this process; "
            "they end with it, and other processes do not accept them"
        )
        return AccessTokens(random_secret(), settings.access_token_ttl_seconds)
    return AccessTokens(settings.jwt_secret.reveal(), settings.access_token_ttl_seconds)


def _address_limiter(settings: Settings, cluster: Cluster | None, rate: int) -> RateLimiter | None:
    """A limit per client address, shared by the cluster through Redis when there is one."""
    if not rate:
        return None
    if cluster is None:
        return TokenBucketLimiter(rate)
    return RedisRateLimiter(cluster.redis, rate, prefix=settings.redis_prefix)


async def drain(app: web.Application) -> None:
    """Shutdown, step by step: readiness 503, wait, refuse new work, tell every client, close transports.

    Closing the transports (rather than a Socket.IO disconnect) makes socket.io clients reconnect by
    themselves, to another process behind the balancer, and catch up with ``join_room {since_seq}``.
    """
    settings, server, namespace = app[SETTINGS], app[SERVER], app[NAMESPACE]
    app[HEALTH].draining = True
    if settings.drain_delay_seconds:
        log.info("draining: /readyz answers 503 for %.1fs", settings.drain_delay_seconds)
        await asyncio.sleep(settings.drain_delay_seconds)
    namespace.accepting = False
    count = app[api.SERVICE].connection_count
    log.info("telling %d clients the server shuts down", count)
    # ignore_queue: only this process's clients; with Redis, a plain emit would reach every pod's.
    await server.emit("server_shutdown", SHUTDOWN_NOTICE, ignore_queue=True)
    await server.close_transports()
    log.info("closed the transports of %d clients", count)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(request.app[SETTINGS].static_dir / "index.html")


async def _page_headers(request: web.Request, response: web.StreamResponse) -> None:
    # A response signal, not a middleware: no frame of it lives as long as a WebSocket does.
    if not request.path.startswith(("/api/", "/socket.io/")):
        response.headers.setdefault("Content-Security-Policy", _PAGE_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
