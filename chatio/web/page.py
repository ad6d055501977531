"""The page at ``/`` and its static files, with the headers that keep it strict (CSP, nosniff)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

from chatio.keys import SETTINGS
from chatio.web.api import json_errors, not_found

PAGE_POLICY: Final = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def page_routes(static_dir: Path) -> list[web.AbstractRouteDef]:
    """The page and its files; any other path, any method, answers a JSON 404 (register these last)."""
    root = static_dir.resolve()

    async def static_file(request: web.Request) -> web.StreamResponse:
        found = _inside(root, request.match_info["path"])
        if found is None:
            return await not_found(request)
        return web.FileResponse(found)

    return [
        web.get("/", _index),
        web.get("/{path:.+}", json_errors(static_file)),
        web.route("*", "/{path:.*}", json_errors(not_found)),
    ]


def _inside(root: Path, relative: str) -> Path | None:
    """The regular file ``relative`` names under ``root``, never outside it (``..``, a symlink out)."""
    try:
        path = (root / relative).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    return path if path.is_relative_to(root) and path.is_file() else None


async def page_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` signal for every response but the API's and Socket.IO's."""
    # A response signal, not a middleware: no frame of it lives as long as a WebSocket does.
    if not request.path.startswith(("/api/", "/socket.io/")):
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(request.app[SETTINGS].static_dir / "index.html")
