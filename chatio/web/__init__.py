"""HTTP: the REST API under ``/api``, bearer auth, health and metrics, the page and its headers.

Thin, like :mod:`chatio.realtime`: handlers validate with :mod:`chatio.schemas`, call the chat core or the
account service, and translate :class:`~chatio.errors.ChatError` into JSON errors. May import the domain
(:mod:`chatio.chat`, :mod:`chatio.accounts`), the store protocols, :mod:`chatio.keys` and aiohttp; never a
concrete backend, :mod:`chatio.realtime` or :mod:`chatio.transport`.
"""

from __future__ import annotations

from aiohttp import web

from chatio.web.accounts import AccountsApi
from chatio.web.api import PREFIX, ChatApi, guarded_routes, not_found
from chatio.web.client_config import config_view
from chatio.web.people import PeopleApi


def rest_routes() -> list[web.RouteDef]:
    """Every REST route, JSON errors included; the catch-all 404 for ``/api`` comes last, here only."""
    routes = [
        web.get(f"{PREFIX}/config", config_view),
        *AccountsApi().routes(),
        *PeopleApi().routes(),
        *ChatApi().routes(),
        web.route("*", "/api/{tail:.*}", not_found),
    ]
    return guarded_routes(routes)
