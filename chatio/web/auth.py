"""Who is calling a REST endpoint: ``Authorization: Bearer <access token>``, checked like a socket's."""

from __future__ import annotations

from aiohttp import web

from chatio import errors
from chatio.accounts.identity import Identity
from chatio.errors import ChatError
from chatio.keys import ACCOUNTS


async def caller(request: web.Request) -> Identity:
    """The identity of the request's bearer token; ``ChatError`` 401 without a valid one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ChatError(
            errors.UNAUTHORIZED, "send Authorization: Bearer <access token> (POST /api/chat/auth/login)"
        )
    return await request.app[ACCOUNTS].identify(token.strip())
