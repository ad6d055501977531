"""Liveness, readiness and the draining flag that shutdown flips."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

LIVENESS_PATH: Final = "/healthz"
READINESS_PATH: Final = "/readyz"
CHECK_TIMEOUT_SECONDS: Final = 1.5

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]


class Health:
    """Readiness: not draining, and every dependency check returns within its deadline."""

    def __init__(self) -> None:
        self.draining = False
        self._checks: dict[str, Check] = {}

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    async def failing(self) -> list[str]:
        """Names of the checks that fail now."""
        names = list(self._checks)
        results = await asyncio.gather(
            *(asyncio.wait_for(self._checks[name](), CHECK_TIMEOUT_SECONDS) for name in names),
            return_exceptions=True,
        )
        failed = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("readiness check %s failed: %r", name, result)
                failed.append(name)
        return failed

    async def liveness(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readiness(self, _request: web.Request) -> web.Response:
        if self.draining:
            return web.json_response({"status": "draining"}, status=503)
        failed = await self.failing()
        if failed:
            return web.json_response({"status": "unavailable", "failing": failed}, status=503)
        return web.json_response({"status": "ready"})

    def routes(self) -> list[web.RouteDef]:
        return [web.get(LIVENESS_PATH, self.liveness), web.get(READINESS_PATH, self.readiness)]
