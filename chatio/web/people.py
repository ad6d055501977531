"""Who is there: ``GET /api/chat/users`` (a page of users, who is online) and
``GET /api/chat/rooms/{room}/members`` (who is in a room now, with their status). Thin, like ``api.py``."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from chatio import schemas
from chatio.keys import ACCESS, ACCOUNTS, SERVICE
from chatio.presence import OFFLINE
from chatio.web.api import PREFIX, user_wire
from chatio.web.auth import caller
from chatio.web.replies import json_reply

#: Most users one request reads from the store while it looks for ``online`` ones: a page may hold fewer
#: than ``limit`` (its ``next`` continues the search), never a scan of everyone.
SCAN_MAX: Final = 500


class PeopleApi:
    def __init__(self) -> None:
        self._users = schemas.UsersQuery()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{PREFIX}/users", self.users),
            web.get(f"{PREFIX}/rooms/{{room_id}}/members", self.members),
        ]

    async def users(self, request: web.Request) -> web.Response:
        """Users by username (``q``: a username prefix), with their status; ``online=true`` (or false) keeps
        those who are (or are not) connected. Other users' e-mail addresses are never shown (but to
        administrators); deleted users are left out. ``next`` is the ``cursor`` of the following page."""
        identity = await caller(request)
        query = schemas.load(self._users, dict(request.query))
        limit, online = query["limit"], query.get("online")
        store, presence = request.app[SERVICE].store, request.app[SERVICE].presence
        accounts = request.app[ACCOUNTS].accounts
        found: list[dict[str, Any]] = []
        last, scanned, exhausted = query.get("cursor"), 0, False
        while len(found) < limit and scanned < SCAN_MAX:
            asked = min(limit, SCAN_MAX - scanned)
            page = await store.users(prefix=query.get("q", ""), after=last, limit=asked)
            for user in page:
                last, scanned = user.username, scanned + 1
                if await accounts.is_deleted(user.id):
                    continue
                status = await presence.status(user.username)
                if online is None or (status != OFFLINE) is online:
                    own = identity.admin or identity.user_id == user.id
                    found.append(user_wire(user, status, email=own))
                    if len(found) == limit:
                        break
            if len(page) < asked:
                exhausted = True
                break
        return json_reply({"users": found, "next": None if exhausted else last})

    async def members(self, request: web.Request) -> web.Response:
        """Who is in the room now (a socket of theirs joined it), with their status, ordered by name;
        members of a private or direct-message room only (403 otherwise)."""
        identity = await caller(request)
        room = await request.app[ACCESS].readable(identity, request.match_info["room_id"])
        service = request.app[SERVICE]
        members = await service.presence.members(room.id)
        names = await service.names.many(m.user for m in members)
        listed = [{"user": m.user, "displayName": names[m.user], "status": m.status} for m in members]
        return json_reply({"room": room.id, "members": listed})
