"""Spring Boot Actuator's paths, for the seeds' Prometheus configurations and habits: ``/actuator/health``
with a status per component, ``/actuator/prometheus``, ``/actuator/metrics`` and
``/actuator/metrics/{name}``. The same facts as ``/readyz`` and ``/metrics``, in Actuator's shapes."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from chatio import errors
from chatio.errors import ChatError
from chatio.keys import HEALTH, METRICS
from chatio.metrics import CONTENT_TYPE
from chatio.web.replies import json_reply

PREFIX: Final = "/actuator"


def actuator_routes() -> list[web.RouteDef]:
    return [
        web.get(f"{PREFIX}/health", _health),
        web.get(f"{PREFIX}/prometheus", _prometheus),
        web.get(f"{PREFIX}/metrics", _metric_names),
        web.get(f"{PREFIX}/metrics/{{name}}", _metric),
    ]


async def _health(request: web.Request) -> web.Response:
    """``UP`` (200) when every component is; ``DOWN`` (503) when one is not; ``OUT_OF_SERVICE`` (503)
    while draining. Components: ``store``, and with Redis ``redis`` (presence) and ``pubsub`` (fan-out)."""
    health = request.app[HEALTH]
    components: dict[str, Any] = {}
    for name, result in (await health.check_all()).items():
        details: dict[str, Any] = {"latencyMs": round(result.seconds * 1000, 2)}
        if result.error is not None:
            details["error"] = result.error
        components[name] = {"status": "UP" if result.ok else "DOWN", "details": details}
    if health.draining:
        status = "OUT_OF_SERVICE"
    else:
        status = "UP" if all(c["status"] == "UP" for c in components.values()) else "DOWN"
    return json_reply({"status": status, "components": components}, status=200 if status == "UP" else 503)


async def _prometheus(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


async def _metric_names(request: web.Request) -> web.Response:
    return json_reply({"names": request.app[METRICS].names()})


async def _metric(request: web.Request) -> web.Response:
    """One metric; ``?tag=label:value`` (repeatable) narrows it to the matching samples."""
    tags: dict[str, str] = {}
    for tag in request.query.getall("tag", []):
        label, colon, value = tag.partition(":")
        if not colon or not label:
            raise ChatError(errors.INVALID_PAYLOAD, "tag: expected label:value", field="tag")
        tags[label] = value
    name = request.match_info["name"]
    measured = request.app[METRICS].measure(name, tags)
    if measured is None:
        raise ChatError(errors.NOT_FOUND, f"no metric {name!r}" + (f" with tags {tags}" if tags else ""))
    return json_reply(
        {
            "name": measured.name,
            "description": measured.description,
            "baseUnit": measured.base_unit,
            "measurements": [{"statistic": s, "value": v} for s, v in measured.measurements],
            "availableTags": [{"tag": t, "values": v} for t, v in measured.available_tags.items()],
        }
    )
