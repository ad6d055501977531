"""JSON replies: UTF-8 as it is, never ``\\u``-escaped, so that a person reads Korean with curl."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

_dumps: Final = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def json_reply(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """``data`` as an ``application/json; charset=utf-8`` response."""
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)
