"""``GET /api/chat/config``: the limits a client needs before it talks (docs/protocol.md, "REST").

Public, like ``/healthz``: the sign-in form needs it before anyone has a token. Only client-facing
limits, never a secret or an address.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from chatio import schemas
from chatio.config import Settings
from chatio.keys import SETTINGS
from chatio.store import REACTIONS
from chatio.web.replies import json_reply

#: The longest username and room id the schemas accept (their patterns' ``{1,N}``), and a display name.
USERNAME_MAX_LENGTH: Final = 32
ROOM_MAX_LENGTH: Final = 64
DISPLAY_NAME_MAX_LENGTH: Final = 64


def client_config(settings: Settings) -> dict[str, Any]:
    return {
        "messageMaxLength": settings.message_max_length,
        "historyPageSize": settings.history_page_size,
        "historyMaxPage": settings.history_max_page,
        "catchupMax": settings.catchup_max,
        "typingTimeoutSeconds": settings.typing_timeout_seconds,
        "roomsPerConnection": settings.rooms_per_connection,
        "allowGuests": settings.allow_guests,
        "usernameMaxLength": USERNAME_MAX_LENGTH,
        "roomMaxLength": ROOM_MAX_LENGTH,
        "displayNameMaxLength": DISPLAY_NAME_MAX_LENGTH,
        "passwordMinLength": schemas.PASSWORD_MIN,
        "passwordMaxLength": schemas.PASSWORD_MAX,
        "accessTokenTtlSeconds": settings.access_token_ttl_seconds,
        # A room without retentionDays of its own keeps messages this long (0: forever).
        "retentionDays": settings.retention_days,
        "reactions": list(REACTIONS),
    }


async def config_view(request: web.Request) -> web.Response:
    return json_reply(client_config(request.app[SETTINGS]))
