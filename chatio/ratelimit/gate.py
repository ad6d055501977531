"""Limits per client address, for the entry points a flood would aim at: Socket.IO connections
(``CHATIO_CONNECT_RATE_PER_MINUTE``) and logins, registrations, refreshes and guest tokens
(``CHATIO_AUTH_RATE_PER_MINUTE``).

The client address is the TCP peer's, unless ``CHATIO_TRUSTED_PROXY_HOPS`` says how many proxies (a load
balancer, an ingress controller) stand in front and append to ``X-Forwarded-For``: then it is the entry
that many places from the right, the one the outermost trusted proxy saw. Entries further left are
written by the client and never trusted. IPv6 addresses are limited by their /64, which one subscriber
usually holds whole.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from chatio import errors
from chatio.errors import ChatError
from chatio.ratelimit import RateLimiter


def client_address(peer: str | None, forwarded_for: str | None, trusted_hops: int) -> str:
    """The address to limit (see the module docstring)."""
    address = peer or "unknown"
    if trusted_hops and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if len(hops) >= trusted_hops:
            address = hops[-trusted_hops]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def request_address(request: web.Request, trusted_hops: int) -> str:
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", [])) or None
    return client_address(request.remote, forwarded, trusted_hops)


class Gate:
    """``rate_per_minute`` requests of one kind per client address; ``0`` lets everything through."""

    def __init__(
        self, name: str, limiter: RateLimiter | None, rate_per_minute: int, trusted_hops: int
    ) -> None:
        self.name = name
        self._limiter = limiter if rate_per_minute else None
        self._rate = rate_per_minute
        self._hops = trusted_hops

    async def check(self, request: web.Request) -> None:
        """Raise ``ChatError(rate_limited)`` with ``retryAfterMs`` when this address is over its limit."""
        await self.check_address(request_address(request, self._hops))

    async def check_socket(self, environ: Mapping[str, Any]) -> None:
        """:meth:`check` for a Socket.IO connection, from the environ its session keeps."""
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        await self.check_address(client_address(environ.get("REMOTE_ADDR"), forwarded, self._hops))

    async def check_address(self, address: str) -> None:
        if self._limiter is None:
            return
        wait = await self._limiter.acquire(f"{self.name}:{address}")
        if wait > 0:
            raise ChatError(
                errors.RATE_LIMITED,
                f"more than {self._rate} {self.name} requests a minute from your address; "
                f"retry in {wait:.1f} s",
                retryAfterMs=int(wait * 1000) + 1,
            )
