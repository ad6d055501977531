"""Who is calling a REST endpoint: ``Authorization: Bearer <access token>``, checked like a socket's.

Also the application keys of the account and room-access services, shared by ``api.py`` and
``api_accounts.py``.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from chatio import errors
from chatio.accounts.identity import Identity
from chatio.accounts.service import AccountService
from chatio.chat.access import RoomAccess
from chatio.errors import ChatError
from chatio.ratelimit.gate import Gate

ACCOUNTS: Final = web.AppKey("accounts", AccountService)
ACCESS: Final = web.AppKey("room_access", RoomAccess)
AUTH_GATE: Final = web.AppKey("auth_gate", Gate)


async def caller(request: web.Request) -> Identity:
    """The identity of the request's bearer token; ``ChatError`` 401 without a valid one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ChatError(
            errors.UNAUTHORIZED, "send Authorization: Bearer <access token> (POST /api/chat/auth/login)"
        )
    return await request.app[ACCOUNTS].identify(token.strip())
