"""Liveness, readiness and the draining flag that shutdown flips."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

LIVENESS_PATH: Final = "/healthz"
READINESS_PATH: Final = "/readyz"
CHECK_TIMEOUT_SECONDS: Final = 1.5

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    seconds: float
    #: The failure's exception type, when it failed.
    error: str | None = None


class Health:
    """Readiness: not draining, and every dependency check returns within its deadline."""

    def __init__(self) -> None:
        self.draining = False
        self._checks: dict[str, Check] = {}

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    async def check_all(self) -> dict[str, CheckResult]:
        """Every check, run at once, each within :data:`CHECK_TIMEOUT_SECONDS`."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def _run(self, name: str) -> CheckResult:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self._checks[name](), CHECK_TIMEOUT_SECONDS)
        except Exception as exc:
            log.warning("readiness check %s failed: %r", name, exc)
            # The exception's type only: its text may name internal hosts, and health is public.
            return CheckResult(False, time.perf_counter() - started, type(exc).__name__)
        return CheckResult(True, time.perf_counter() - started)

    async def failing(self) -> list[str]:
        """Names of the checks that fail now."""
        return [name for name, result in (await self.check_all()).items() if not result.ok]

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
