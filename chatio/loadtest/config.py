"""The load generator's settings: environment variables (seed 001's names, plus a few), each also a flag.

A flag wins over its variable; a bad value stops the generator with a message naming the variable or flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from chatio.loadtest.framing import PLAIN_PATH


class LoadConfigError(ValueError):
    """A setting is malformed; the message names it."""


@dataclasses.dataclass(frozen=True, slots=True)
class LoadConfig:
    """What to run. ``rates`` empty means seed 001's plan: each sender sends ``msg_count`` messages, one
    every ``msg_interval_sec``; otherwise each rate (messages sent per second, all senders together) is
    held for ``duration`` seconds, one step after the other."""

    target_url: str = "http://127.0.0.1:8080"
    conn_count: int = 1000
    batch_size: int = 500
    batch_delay_ms: int = 1000
    msg_count: int = 10
    msg_interval_sec: float = 5.0
    room_id: str = "load-test-room"
    room_size: int = 50
    senders: int = 0
    rates: tuple[float, ...] = ()
    duration: float = 10.0
    client_id: str = dataclasses.field(default_factory=lambda: f"lt{os.getpid()}")
    latency_sample: float = 1.0
    drain_sec: float = 5.0
    connect_timeout: float = 15.0
    server_pid: int | None = None
    json_out: Path | None = None

    @property
    def sender_count(self) -> int:
        return self.conn_count if self.senders <= 0 else min(self.senders, self.conn_count)

    def steps(self) -> list[tuple[float, float]]:
        """(sends per second, seconds) for each step of the conversation."""
        if self.rates:
            return [(rate, self.duration) for rate in self.rates]
        if self.msg_count <= 0:
            return []
        return [(self.sender_count / self.msg_interval_sec, self.msg_count * self.msg_interval_sec)]

    def room_of(self, index: int) -> str:
        """Connection ``index`` joins this room: rooms of ``room_size``, or all in ``room_id`` when 0."""
        if self.room_size <= 0 or self.room_size >= self.conn_count:
            return self.room_id
        return f"{self.room_id}-{index // self.room_size}"


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _seconds(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= 86_400:
        raise ValueError("must be more than 0 and at most 86400")
    return value


def _rates(raw: str) -> tuple[float, ...]:
    values = tuple(float(item) for item in raw.split(",") if item.strip())
    if any(not 0 < value <= 10_000_000 for value in values):
        raise ValueError("each rate must be more than 0 and at most 10000000 messages a second")
    return values


def _fraction(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= 1:
        raise ValueError("must be more than 0 and at most 1")
    return value


def _name(raw: str) -> str:
    value = raw.strip()
    if not value or len(value) > 40 or not all(c.isalnum() or c in "_-.:" for c in value):
        raise ValueError("1 to 40 letters, digits, _ - . :")
    return value


_OPTIONS: Final[dict[str, tuple[str, Callable[[str], Any], str]]] = {
    # field: (environment variable, parser, help)
    "target_url": (
        "TARGET_URL",
        str,
        "server URL: http://host:port or ws://host:port/socket.io/ (Socket.IO); ws://host:port/ws/chat",
    ),
    "conn_count": ("CONN_COUNT", _positive_int, "connections to open"),
    "batch_size": ("BATCH_SIZE", _positive_int, "connections opened at once during the ramp"),
    "batch_delay_ms": ("BATCH_DELAY_MS", _count, "pause between ramp batches, ms"),
    "msg_count": ("MSG_COUNT", _count, "messages per sender (when RATE is not set)"),
    "msg_interval_sec": ("MSG_INTERVAL_SEC", _seconds, "seconds between one sender's messages"),
    "room_id": ("ROOM_ID", _name, "room name, or prefix of the room names when ROOM_SIZE is set"),
    "room_size": (
        "ROOM_SIZE",
        _count,
        "connections per room; 0 puts everyone in ROOM_ID (the default for /ws/chat, as in seed 001)",
    ),
    "senders": ("SENDERS", _count, "connections that send; 0 means all"),
    "rates": ("RATE", _rates, "messages per second, all senders together; a comma list runs steps"),
    "duration": ("DURATION", _seconds, "seconds per RATE step"),
    "client_id": ("CLIENT_ID", _name, "username prefix; usernames are <CLIENT_ID>-<n>"),
    "latency_sample": ("LATENCY_SAMPLE", _fraction, "fraction of connections that time deliveries"),
    "drain_sec": ("DRAIN_SEC", _seconds, "longest wait for outstanding deliveries after a step"),
    "server_pid": ("SERVER_PID", _positive_int, "server PID on this machine: report its CPU too"),
    "json_out": ("JSON_OUT", Path, "also write the result as JSON to this file"),
}


def _shown(default: object) -> str:
    if default is None or default == ():
        return "unset"
    if isinstance(default, tuple):
        return "default " + ",".join(f"{value:g}" for value in default)
    return f"default {default}"


def _flag(field: str) -> str:
    return "--rate" if field == "rates" else "--" + field.replace("_", "-")


def load_config(argv: Sequence[str] | None, environ: Mapping[str, str]) -> LoadConfig:
    """Settings from ``environ``, overridden by flags in ``argv``."""
    parser = argparse.ArgumentParser(
        prog="chatio-loadtest",
        description="Socket.IO and /ws/chat load generator for chatio. Every flag can also be set by the "
        "environment variable shown.",
    )
    defaults = LoadConfig()
    for field, (variable, _parse, text) in _OPTIONS.items():
        default = _shown(getattr(defaults, field))
        parser.add_argument(
            _flag(field), dest=field, metavar=variable, help=f"{text} [{variable}; {default}]"
        )
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for field, (variable, parse, _text) in _OPTIONS.items():
        raw, source = getattr(args, field), _flag(field)
        if raw is None:
            raw, source = environ.get(variable), variable
        if raw is None or raw == "":
            continue
        try:
            values[field] = parse(raw)
        except ValueError as exc:
            raise LoadConfigError(f"{source}={raw!r}: {exc}") from None
    target = values.get("target_url", LoadConfig().target_url)
    if "room_size" not in values and urllib.parse.urlsplit(target).path.rstrip("/").endswith(PLAIN_PATH):
        values["room_size"] = 0  # seed 001's plan: everyone in ROOM_ID
    config = LoadConfig(**values)
    if len(f"{config.client_id}-{config.conn_count}") > 32:
        raise LoadConfigError("CLIENT_ID: usernames <CLIENT_ID>-<n> must fit in 32 characters")
    return config
