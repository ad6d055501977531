"""What operators and Kubernetes read: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web

from chatio.health import Health
from chatio.keys import METRICS
from chatio.metrics import CONTENT_TYPE


def operation_routes(health: Health) -> list[web.RouteDef]:
    return [*health.routes(), web.get("/metrics", _metrics)]


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
