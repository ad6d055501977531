"""REST routes for accounts and access (docs/protocol.md, "REST"): login, refresh, logout, guest tokens,
deleting users, direct-message rooms and invitations. Thin, like ``api.py``."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from chatio import schemas
from chatio.accounts.service import Grant
from chatio.keys import ACCESS, ACCOUNTS, AUTH_GATE
from chatio.web.api import PREFIX, json_body, user_wire
from chatio.web.auth import caller
from chatio.web.replies import json_reply


def grant_wire(grant: Grant) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "accessToken": grant.access_token,
        "tokenType": "Bearer",
        "expiresIn": max(0, round(grant.expires_at - time.time())),
        "expiresAt": round(grant.expires_at * 1000),
        "user": user_wire(grant.user),
    }
    if grant.refresh_token is not None and grant.refresh_expires_at is not None:
        wire["refreshToken"] = grant.refresh_token
        wire["refreshExpiresAt"] = round(grant.refresh_expires_at * 1000)
    return wire


class AccountsApi:
    def __init__(self) -> None:
        self._login = schemas.Login()
        self._refresh = schemas.RefreshBody()
        self._guest = schemas.GuestAuth()

    def routes(self) -> list[web.RouteDef]:
        """Register these before ``ChatApi``'s, which end with the catch-all 404."""
        return [
            web.post(f"{PREFIX}/auth/login", self.login),
            web.post(f"{PREFIX}/auth/refresh", self.refresh),
            web.post(f"{PREFIX}/auth/logout", self.logout),
            web.post(f"{PREFIX}/auth/guest", self.guest),
            web.delete(f"{PREFIX}/users/{{user_id}}", self.delete_user),
            web.get(f"{PREFIX}/dms", self.direct_rooms),
            web.get(f"{PREFIX}/invitations", self.invitations),
        ]

    async def login(self, request: web.Request) -> web.Response:
        await request.app[AUTH_GATE].check(request)
        body = schemas.load(self._login, await json_body(request))
        grant = await request.app[ACCOUNTS].login(body["username"], body["password"])
        return json_reply(grant_wire(grant))

    async def refresh(self, request: web.Request) -> web.Response:
        await request.app[AUTH_GATE].check(request)
        body = schemas.load(self._refresh, await json_body(request))
        grant = await request.app[ACCOUNTS].refresh(body["refreshToken"])
        return json_reply(grant_wire(grant))

    async def logout(self, request: web.Request) -> web.Response:
        await request.app[AUTH_GATE].check(request)
        body = schemas.load(self._refresh, await json_body(request))
        await request.app[ACCOUNTS].logout(body["refreshToken"])
        return json_reply({"ok": True})

    async def guest(self, request: web.Request) -> web.Response:
        await request.app[AUTH_GATE].check(request)
        body = schemas.load(self._guest, await json_body(request))
        return json_reply(grant_wire(await request.app[ACCOUNTS].guest_grant(body["username"])))

    async def delete_user(self, request: web.Request) -> web.Response:
        identity = await caller(request)
        await request.app[ACCOUNTS].delete(identity, request.match_info["user_id"])
        return json_reply({"ok": True})

    async def direct_rooms(self, request: web.Request) -> web.Response:
        identity = await caller(request)
        rooms = await request.app[ACCESS].direct_rooms(identity)
        return json_reply(
            {
                "dms": [
                    {
                        "room": direct.room.id,
                        "createdAt": direct.room.created_at,
                        "user": user_wire(direct.peer, email=False),
                    }
                    for direct in rooms
                ]
            }
        )

    async def invitations(self, request: web.Request) -> web.Response:
        identity = await caller(request)
        pending = await request.app[ACCESS].invitations(identity)
        return json_reply(
            {"invitations": [{"room": i.room, "by": i.by_name, "createdAt": i.created_at} for i in pending]}
        )
