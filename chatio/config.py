"""Settings: read once from ``CHATIO_*`` environment variables, typed, frozen and validated at boot.

Every variable is declared exactly once, in ``_FIELDS`` below; the README's configuration table, the
Kubernetes ConfigMap and ``tests/test_config.py`` are checked against that declaration. A bad value raises
:class:`ConfigError` naming the variable, and ``python -m chatio`` turns that into a one-line message and
exit status 2 before anything starts.
"""

from __future__ import annotations

import dataclasses
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

PREFIX: Final = "CHATIO_"
DEFAULT_STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


class Secret:
    """A string that never prints: ``repr`` and ``str`` hide it, ``reveal()`` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """The server's whole configuration. Build it with :func:`load_settings` or directly in tests."""

    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    static_dir: Path = DEFAULT_STATIC_DIR
    pod_name: str = dataclasses.field(default_factory=socket.gethostname)

    message_max_length: int = 1000
    rate_limit_per_minute: int = 60
    room_max_members: int = 1000
    rooms_per_connection: int = 50
    auto_create_rooms: bool = True
    history_page_size: int = 50
    history_max_page: int = 200
    catchup_max: int = 500
    memory_max_messages_per_room: int = 10_000
    retention_days: int = 0
    retention_sweep_seconds: float = 60.0
    typing_timeout_seconds: float = 5.0

    ping_interval_seconds: float = 25.0
    ping_timeout_seconds: float = 20.0
    connect_timeout_seconds: float = 45.0
    max_payload_bytes: int = 256 * 1024
    cors_origins: tuple[str, ...] = ()
    websocket_compression: bool = False
    fast_broadcast: bool = True

    drain_delay_seconds: float = 0.0
    shutdown_timeout_seconds: float = 10.0

    mongodb_uri: Secret | None = None
    mongodb_database: str = "chatio"
    mongodb_write_concern: str = "majority"
    store_timeout_seconds: float = 2.0
    group_commit_max_wait_ms: float = 2.0
    group_commit_max_batch: int = 500

    redis_url: Secret | None = None
    redis_prefix: str = "chatio"
    redis_timeout_seconds: float = 1.0
    redis_fanout: str = "classic"
    presence_heartbeat_seconds: float = 5.0

    # Accounts and abuse limits (README, "Security").
    allow_guests: bool = True
    jwt_secret: Secret | None = None
    access_token_ttl_seconds: float = 900.0
    refresh_token_ttl_seconds: float = 30 * 24 * 3600.0
    auth_rate_per_minute: int = 30
    connect_rate_per_minute: int = 0
    trusted_proxy_hops: int = 0
    slow_consumer_max_queue: int = 2000
    message_key: Secret | None = None


# --- parsing -----------------------------------------------------------------------------------------

_Parser = Callable[[str], Any]


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _integer(low: int, high: int) -> _Parser:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return value

    return parse


def _number(low: float, high: float) -> _Parser:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if not low <= value <= high:
            raise ValueError(f"expected a number from {low:g} to {high:g}")
        return value

    return parse


def _choice(*allowed: str) -> _Parser:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value not in allowed:
            raise ValueError("expected one of " + ", ".join(allowed))
        return value

    return parse


def _text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _origins(raw: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        if item != "*" and not item.startswith(("http://", "https://")):
            raise ValueError(f"origin {item!r} must be '*' or start with http:// or https://")
    return items


def _url(*schemes: str) -> _Parser:
    def parse(raw: str) -> Secret:
        value = raw.strip()
        if not value.startswith(tuple(f"{scheme}://" for scheme in schemes)):
            raise ValueError("expected a URL starting with " + " or ".join(f"{s}://" for s in schemes))
        return Secret(value)

    return parse


def _redis_url(raw: str) -> Secret:
    url: Secret = _url("redis", "rediss", "redis+sentinel", "redis+cluster", "rediss+cluster")(raw)
    if "+cluster://" in url.reveal():
        hosts = url.reveal().partition("://")[2].rpartition("@")[2].split(",")
        if not all(re.fullmatch(r"[^:/?#]+:[0-9]{1,5}", host) for host in hosts):
            raise ValueError("a redis+cluster:// URL lists nodes as host:port,host:port with nothing after")
    if url.reveal().startswith("redis+sentinel://"):
        # host1:port1,host2:port2/db/service: the service (master) name must be explicit, else every
        # client library picks its own default.
        path = url.reveal().split("@")[-1].partition("/")[2]
        parts = path.split("/")
        if len(parts) < 2 or not parts[1]:
            raise ValueError("a redis+sentinel:// URL needs the master name: redis+sentinel://h:p,h:p/0/name")
    return url


def _key_prefix(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", value):
        raise ValueError("expected 1 to 64 of A-Z a-z 0-9 _ . : -")
    return value


def _jwt_secret(raw: str) -> Secret:
    value = raw.strip()
    if len(value) < 32:
        raise ValueError("expected at least 32 characters (for example: openssl rand -base64 48)")
    return Secret(value)


def _keyring(raw: str) -> Secret:
    from chatio.store.cipher import parse_keyring  # only when the setting is used: cryptography is heavy

    parse_keyring(raw)
    return Secret(raw.strip())


def _directory(raw: str) -> Path:
    path = Path(raw.strip())
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory")
    return path


_FIELDS: Final[dict[str, tuple[str, _Parser, str]]] = {
    # field name: (variable suffix, parser, one-line description for the README table)
    "host": ("HOST", _text, "Address to listen on (use 0.0.0.0 in a container)."),
    "port": ("PORT", _integer(0, 65535), "TCP port for HTTP, Socket.IO, health and metrics."),
    "log_level": ("LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "Log level."),
    "static_dir": ("STATIC_DIR", _directory, "Folder served at / (the web test page)."),
    "pod_name": ("POD_NAME", _text, "Name of this process in metrics and /api/chat/stats."),
    "message_max_length": ("MESSAGE_MAX_LENGTH", _integer(1, 100_000), "Longest message text."),
    "rate_limit_per_minute": (
        "RATE_LIMIT_PER_MINUTE",
        _integer(1, 10_000_000),
        "Messages per user a minute.",
    ),
    "room_max_members": ("ROOM_MAX_MEMBERS", _integer(1, 1_000_000), "Members a room may hold."),
    "rooms_per_connection": ("ROOMS_PER_CONNECTION", _integer(1, 10_000), "Rooms one socket may join."),
    "auto_create_rooms": ("AUTO_CREATE_ROOMS", _boolean, "join_room creates a missing public room."),
    "history_page_size": ("HISTORY_PAGE_SIZE", _integer(1, 1000), "Messages returned by join_room."),
    "history_max_page": ("HISTORY_MAX_PAGE", _integer(1, 1000), "Largest history page a client may ask."),
    "catchup_max": ("CATCHUP_MAX", _integer(1, 100_000), "Most messages replayed by join_room's sinceSeq."),
    "memory_max_messages_per_room": (
        "MEMORY_MAX_MESSAGES_PER_ROOM",
        _integer(1, 10_000_000),
        "The in-memory store keeps this many newest messages per room (MongoDB keeps all).",
    ),
    "retention_days": (
        "RETENTION_DAYS",
        _integer(0, 36_500),
        "Messages older than this many days are removed (a room may set its own); 0: kept forever.",
    ),
    "retention_sweep_seconds": (
        "RETENTION_SWEEP_SECONDS",
        _number(1, 86_400),
        "How often the retention sweeper visits the next 500 rooms.",
    ),
    "typing_timeout_seconds": ("TYPING_TIMEOUT_SECONDS", _number(0.1, 600), "A typing state expires."),
    "ping_interval_seconds": ("PING_INTERVAL_SECONDS", _number(0.05, 600), "Engine.IO ping interval."),
    "ping_timeout_seconds": ("PING_TIMEOUT_SECONDS", _number(0.05, 600), "Engine.IO ping timeout."),
    "connect_timeout_seconds": (
        "CONNECT_TIMEOUT_SECONDS",
        _number(0.1, 3600),
        "An Engine.IO session that joins no Socket.IO namespace within it is closed.",
    ),
    "max_payload_bytes": ("MAX_PAYLOAD_BYTES", _integer(1024, 100_000_000), "Largest inbound frame."),
    "cors_origins": ("CORS_ORIGINS", _origins, "Comma-separated allowed origins; empty: same-origin."),
    "websocket_compression": (
        "WEBSOCKET_COMPRESSION",
        _boolean,
        "Per-message deflate on WebSocket, both ways, no context kept between messages; costs CPU.",
    ),
    "fast_broadcast": ("FAST_BROADCAST", _boolean, "Encode a room broadcast once for every recipient."),
    "drain_delay_seconds": ("DRAIN_DELAY_SECONDS", _number(0, 600), "Wait with /readyz 503 before closing."),
    "shutdown_timeout_seconds": ("SHUTDOWN_TIMEOUT_SECONDS", _number(0.1, 600), "Bound on shutdown."),
    "mongodb_uri": ("MONGODB_URI", _url("mongodb", "mongodb+srv"), "MongoDB URI; unset: in-memory store."),
    "mongodb_database": ("MONGODB_DATABASE", _text, "MongoDB database name."),
    "mongodb_write_concern": (
        "MONGODB_WRITE_CONCERN",
        _choice("majority", "1"),
        "Write concern w: majority or 1 (0 is refused: an ack must mean stored).",
    ),
    "store_timeout_seconds": ("STORE_TIMEOUT_SECONDS", _number(0.05, 60), "Store operations time out."),
    "group_commit_max_wait_ms": ("GROUP_COMMIT_MAX_WAIT_MS", _number(0, 1000), "Group commit wait."),
    "group_commit_max_batch": ("GROUP_COMMIT_MAX_BATCH", _integer(1, 100_000), "Group commit batch size."),
    "redis_url": (
        "REDIS_URL",
        _redis_url,
        "Redis URL (also redis+sentinel://, redis+cluster://h:p,h:p); unset: one process.",
    ),
    "redis_prefix": ("REDIS_PREFIX", _key_prefix, "Prefix of Redis keys and channel; one per cluster."),
    "redis_timeout_seconds": ("REDIS_TIMEOUT_SECONDS", _number(0.05, 60), "Redis commands time out."),
    "redis_fanout": (
        "REDIS_FANOUT",
        _choice("classic", "sharded"),
        "classic: one channel every process reads; sharded: a channel per room (SPUBLISH, Redis 7).",
    ),
    "presence_heartbeat_seconds": (
        "PRESENCE_HEARTBEAT_SECONDS",
        _number(0.1, 300),
        "Presence heartbeat; a dead process's users go offline within 4x this.",
    ),
    "allow_guests": ("ALLOW_GUESTS", _boolean, "Guests connect with a bare username; false: accounts only."),
    "jwt_secret": (
        "JWT_SECRET",
        _jwt_secret,
        "Key (32+ characters) signing access tokens; unset: a random key per process.",
    ),
    "access_token_ttl_seconds": ("ACCESS_TOKEN_TTL_SECONDS", _number(10, 86_400), "Access tokens expire."),
    "refresh_token_ttl_seconds": (
        "REFRESH_TOKEN_TTL_SECONDS",
        _number(60, 366 * 86_400),
        "Refresh tokens (and so sessions) expire.",
    ),
    "auth_rate_per_minute": (
        "AUTH_RATE_PER_MINUTE",
        _integer(1, 100_000),
        "Logins, registrations, refreshes and guest tokens per client address a minute.",
    ),
    "connect_rate_per_minute": (
        "CONNECT_RATE_PER_MINUTE",
        _integer(0, 1_000_000),
        "Socket.IO connections per client address a minute; 0: no limit.",
    ),
    "trusted_proxy_hops": (
        "TRUSTED_PROXY_HOPS",
        _integer(0, 10),
        "Proxies in front whose X-Forwarded-For entries are trusted; 0: use the peer address.",
    ),
    "slow_consumer_max_queue": (
        "SLOW_CONSUMER_MAX_QUEUE",
        _integer(10, 1_000_000),
        "Packets a connection may have waiting; past it, it is disconnected.",
    ),
    "message_key": (
        "MESSAGE_KEY",
        _keyring,
        "Encrypt message text at rest: id:base64-key[,id:key...], the first encrypts.",
    ),
}


def variable_names() -> dict[str, str]:
    """Map every setting's field name to its environment variable name."""
    return {name: PREFIX + suffix for name, (suffix, _parser, _doc) in _FIELDS.items()}


def describe() -> list[tuple[str, str, str]]:
    """Rows of (variable, default, description) for documentation."""
    defaults = Settings(pod_name="<hostname>")
    rows = []
    for name, (suffix, _parser, doc) in _FIELDS.items():
        default = getattr(defaults, name)
        if name == "static_dir":
            shown = "static/ beside the package"
        elif isinstance(default, tuple):
            shown = ",".join(default)
        elif isinstance(default, bool):
            shown = str(default).lower()
        else:
            shown = "" if default is None else str(default)
        rows.append((PREFIX + suffix, shown, doc))
    return rows


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from ``environ``; raise :class:`ConfigError` naming the first bad variable."""
    known = set(variable_names().values())
    unknown = sorted(key for key in environ if key.startswith(PREFIX) and key not in known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting (known: see README, 'Configuration')")
    values: dict[str, Any] = {}
    for name, (suffix, parser, _doc) in _FIELDS.items():
        raw = environ.get(PREFIX + suffix)
        if raw is None or (raw.strip() == "" and name in _OPTIONAL_WHEN_EMPTY):
            continue
        try:
            values[name] = parser(raw)
        except ValueError as exc:
            raise ConfigError(f"{PREFIX + suffix}={_shown(name, raw)}: {exc}") from None
    settings = Settings(**values)
    _check_consistency(settings)
    return settings


_OPTIONAL_WHEN_EMPTY: Final = frozenset({"mongodb_uri", "redis_url", "cors_origins", "message_key"})
_SECRET_FIELDS: Final = frozenset({"mongodb_uri", "redis_url", "jwt_secret", "message_key"})


def _shown(name: str, raw: str) -> str:
    return "<hidden>" if name in _SECRET_FIELDS else repr(raw)


def _check_consistency(settings: Settings) -> None:
    if settings.history_page_size > settings.history_max_page:
        raise ConfigError(
            f"{PREFIX}HISTORY_PAGE_SIZE: {settings.history_page_size} exceeds "
            f"{PREFIX}HISTORY_MAX_PAGE ({settings.history_max_page})"
        )
    if settings.ping_timeout_seconds > settings.ping_interval_seconds * 4:
        raise ConfigError(f"{PREFIX}PING_TIMEOUT_SECONDS: must not exceed 4 x {PREFIX}PING_INTERVAL_SECONDS")
    if settings.refresh_token_ttl_seconds <= settings.access_token_ttl_seconds:
        raise ConfigError(f"{PREFIX}REFRESH_TOKEN_TTL_SECONDS: must exceed {PREFIX}ACCESS_TOKEN_TTL_SECONDS")
