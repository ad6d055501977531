"""Who is calling a REST endpoint: ``Authorization: Bearer <access token>``, checked like a socket's."""

from __future__ import annotations

from aiohttp import web

from chatio import errors
from chatio.accounts.identity import Identity
from chatio.errors import ChatError
from chatio.keys import ACCOUNTS


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if the request has one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def caller(request: web.Request) -> Identity:
    """The identity of the request's bearer token; ``ChatError`` 401 without a valid one."""
    token = bearer_token(request)
    if token is None:
        raise ChatError(
            errors.UNAUTHORIZED, "send Authorization: Bearer <access token> (POST /api/chat/auth/login)"
        )
    return await request.app[ACCOUNTS].identify(token)
