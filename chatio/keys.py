"""Every ``web.AppKey`` of the application, in one place: what ``create_app`` stores on the app and what
the routes, the drain and the tests read back. Typed keys, never strings.

It names parts (their types), it builds nothing: so it sits below :mod:`chatio.web`, whose handlers read
the keys, and above the parts it names (``tests/test_layout.py``); only :mod:`chatio.app` stores them."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from chatio.accounts.service import AccountService
from chatio.chat.access import RoomAccess
from chatio.chat.moderation import Moderation
from chatio.chat.service import ChatService
from chatio.config import Settings
from chatio.health import Health
from chatio.metrics import Metrics
from chatio.ratelimit.gate import Gate
from chatio.realtime.namespace import ChatNamespace
from chatio.transport import ChatServer

SETTINGS: Final = web.AppKey("settings", Settings)
SERVER: Final = web.AppKey("socketio_server", ChatServer)
NAMESPACE: Final = web.AppKey("namespace", ChatNamespace)
HEALTH: Final = web.AppKey("health", Health)
METRICS: Final = web.AppKey("metrics", Metrics)
SERVICE: Final = web.AppKey("chat_service", ChatService)
STARTED: Final = web.AppKey("started_monotonic", float)
ACCOUNTS: Final = web.AppKey("accounts", AccountService)
ACCESS: Final = web.AppKey("room_access", RoomAccess)
MODERATION: Final = web.AppKey("moderation", Moderation)
AUTH_GATE: Final = web.AppKey("auth_gate", Gate)
