"""What operators and Kubernetes read: liveness, readiness and Prometheus metrics, also on Actuator's
paths (:mod:`chatio.web.actuator`)."""

from __future__ import annotations

from aiohttp import web

from chatio.health import Health
from chatio.keys import METRICS
from chatio.metrics import CONTENT_TYPE
from chatio.web.actuator import actuator_routes
from chatio.web.api import guarded_routes


def operation_routes(health: Health) -> list[web.RouteDef]:
    return [*health.routes(), web.get("/metrics", _metrics), *guarded_routes(actuator_routes())]


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
