"""The HTTP side of chatio's Engine.IO server: its refusals (JSON, engine.io-protocol's error codes), the
bounded read of a long-polling body, the session cookie and what a session keeps of its first request."""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import web

#: Engine.IO's error codes (engine.io-protocol: HTTP errors).
UNKNOWN_TRANSPORT, UNKNOWN_SID, BAD_HANDSHAKE_METHOD, BAD_REQUEST, FORBIDDEN, UNSUPPORTED_PROTOCOL = range(6)
_MESSAGES: Final = {
    UNKNOWN_TRANSPORT: "Transport unknown",
    UNKNOWN_SID: "Session ID unknown",
    BAD_HANDSHAKE_METHOD: "Bad handshake method",
    BAD_REQUEST: "Bad request",
    FORBIDDEN: "Forbidden",
    UNSUPPORTED_PROTOCOL: "Unsupported protocol version",
}


class TooLarge(Exception):
    """A body (or its announced length) larger than the bound."""


class GoingAway(web.HTTPException):
    """Ends a pending poll without an answer: aiohttp closes the connection."""

    status_code = 503

    def __init__(self) -> None:
        super().__init__(text='{"code":3,"message":"Bad request","context":"the server is going away"}')
        self.force_close()


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, or ``TooLarge`` as soon as it (or its announced length) passes ``limit``."""
    if request.content_length is not None:
        if request.content_length > limit:
            raise TooLarge()
        return await request.content.readexactly(request.content_length)
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > limit:
            raise TooLarge()
    return bytes(body)


def refusal(
    code: int, cors: dict[str, str], *, status: int = 400, context: str | None = None
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": _MESSAGES[code]}
    if context is not None:
        body["context"] = context
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=cors)


def closing(response: web.Response) -> web.Response:
    """A response after which the connection closes (its request may have left bytes unread)."""
    response.force_close()
    return response


def environ_of(request: web.Request) -> dict[str, Any]:
    """What a session keeps of the request that opened it: the client's address and query string."""
    environ: dict[str, Any] = {
        "REMOTE_ADDR": request.remote or "unknown",
        "QUERY_STRING": request.query_string,
    }
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
    if forwarded:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    return environ


def session_cookie(options: dict[str, Any], sid: str) -> str:
    parts = [f"{options.get('name', 'io')}={sid}"]
    for key, value in options.items():
        if key == "name" or value is False:
            continue
        parts.append(key if value is True else f"{key}={value}")
    return "; ".join(parts)
