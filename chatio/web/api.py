"""REST routes under ``/api/chat``: translate HTTP to the chat core and back. Errors are JSON."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from chatio import errors, jsontext, schemas
from chatio.accounts.identity import Identity
from chatio.chat.access import DM_PREFIX
from chatio.chat.moderation import audit_wire, restriction_wire
from chatio.chat.wire import message_wire, reading_wire
from chatio.errors import ChatError
from chatio.keys import ACCESS, ACCOUNTS, AUTH_GATE, MODERATION, SERVICE, STARTED
from chatio.presence import OFFLINE
from chatio.store import Room, Unavailable, User
from chatio.store.access import BAN, MUTE
from chatio.web.auth import bearer_token, caller
from chatio.web.replies import json_reply

log = logging.getLogger(__name__)

PREFIX: Final = "/api/chat"
#: The most read marks ``GET /rooms/{room}/reads`` returns (the furthest readers first).
READS_MAX: Final = 1000

_STATUS: Final = {
    errors.INVALID_PAYLOAD: 400,
    errors.UNAUTHORIZED: 401,
    errors.TOKEN_EXPIRED: 401,
    errors.FORBIDDEN: 403,
    errors.BANNED: 403,
    errors.MUTED: 403,
    errors.NOT_FOUND: 404,
    errors.ROOM_NOT_FOUND: 404,
    errors.CONFLICT: 409,
    errors.RATE_LIMITED: 429,
    errors.UNAVAILABLE: 503,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: ChatError) -> web.Response:
    status = _STATUS.get(error.code, 500)
    headers = {"WWW-Authenticate": 'Bearer realm="chatio"'} if status == 401 else None
    return json_reply({"error": error.as_wire()}, status=status, headers=headers)


def json_errors(handler: Handler) -> Handler:
    """Wrap an /api handler: every failure becomes a JSON error body with a code, never an HTML page.

    A wrapper per route rather than a middleware, so that nothing of it stays alive under the long-lived
    Socket.IO requests (a middleware's frame lasts as long as the WebSocket it wraps).
    """

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ChatError as exc:
            return error_response(exc)
        except Unavailable:
            return error_response(ChatError(errors.UNAVAILABLE, "storage is unavailable, try again"))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = errors.NOT_FOUND if exc.status == 404 else f"http_{exc.status}"
            return json_reply({"error": {"code": code, "message": exc.reason}}, status=exc.status)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return error_response(ChatError(errors.INTERNAL, "internal error; it has been logged"))

    return guarded


async def not_found(request: web.Request) -> web.Response:
    raise ChatError(errors.NOT_FOUND, f"no route {request.method} {request.path}")


def guarded_routes(routes: list[web.RouteDef]) -> list[web.RouteDef]:
    """``routes`` with every handler wrapped by :func:`json_errors`."""
    return [web.RouteDef(r.method, r.path, json_errors(r.handler), r.kwargs) for r in routes]


async def json_body(request: web.Request) -> object:
    """The request's JSON body, decoded as Socket.IO payloads are (:mod:`chatio.jsontext`)."""
    try:
        return jsontext.loads(await request.read())
    except ValueError as exc:
        raise ChatError(errors.INVALID_PAYLOAD, f"body: not valid JSON ({exc})", field="body") from None


def user_wire(user: User, status: str = OFFLINE, *, email: bool = True) -> dict[str, Any]:
    """A user; ``email=False`` for anyone but the user themself and administrators (it is null then)."""
    return {
        "id": user.id,
        "username": user.username,
        "displayName": user.display_name,
        "email": user.email if email else None,
        "createdAt": user.created_at,
        "guest": user.guest,
        "status": status,
    }


def room_wire(room: Room) -> dict[str, Any]:
    return {
        "id": room.id,
        "name": room.name,
        "public": room.public,
        "ownerId": room.owner,
        "createdAt": room.created_at,
    }


async def _room_creator(request: web.Request, owner: str | None) -> Identity:
    """Who creates a room: the token's user (``ownerId``, if given, must name them); without a token, the
    guest ``ownerId`` names, where guests are allowed."""
    if bearer_token(request) is not None or owner is None:
        identity = await caller(request)
        if owner is not None and owner not in (identity.user_id, identity.username):
            raise ChatError(
                errors.FORBIDDEN, "ownerId: a room is owned by whoever creates it: you", field="ownerId"
            )
        return identity
    await request.app[AUTH_GATE].check(request)
    try:
        return await request.app[ACCOUNTS].guest_identity(owner)
    except ChatError as exc:
        raise ChatError(exc.code, exc.message, field="ownerId") from None


class ChatApi:
    """The REST handlers; state comes from the application, never from module globals."""

    def __init__(self) -> None:
        self._create_user = schemas.CreateUser()
        self._create_room = schemas.CreateRoom()
        self._history = schemas.HistoryQuery()
        self._changes = schemas.ChangesQuery()
        self._audit = schemas.AuditQuery()
        self._restricted = schemas.RestrictedQuery()
        self._room_list = schemas.RoomListQuery()
        self._search = schemas.SearchQuery()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{PREFIX}/users", self.create_user),
            web.get(f"{PREFIX}/users/{{user_id}}", self.get_user),
            web.post(f"{PREFIX}/rooms", self.create_room),
            web.get(f"{PREFIX}/rooms/public", self.public_rooms),
            web.get(f"{PREFIX}/rooms/mine", self.member_rooms),
            web.get(f"{PREFIX}/rooms/{{room_id}}/reads", self.reads),
            web.get(f"{PREFIX}/rooms/{{room_id}}/messages", self.messages),
            web.get(f"{PREFIX}/rooms/{{room_id}}/changes", self.changes),
            web.get(f"{PREFIX}/rooms/{{room_id}}/bans", functools.partial(self.restricted, BAN, "bans")),
            web.get(f"{PREFIX}/rooms/{{room_id}}/mutes", functools.partial(self.restricted, MUTE, "mutes")),
            web.get(f"{PREFIX}/stats", self.stats),
            web.get(f"{PREFIX}/search", self.search),
            web.get(f"{PREFIX}/moderation/audit", self.audit),
        ]

    async def create_user(self, request: web.Request) -> web.Response:
        """Registration (username, password, display name, e-mail; without a password a guest profile,
        where guests are allowed): open to anyone, limited per address."""
        await request.app[AUTH_GATE].check(request)
        body = schemas.load(self._create_user, await json_body(request))
        display = body.get("displayName", body["username"])
        user = await request.app[ACCOUNTS].register(
            body["username"], body.get("password"), display, body.get("email")
        )
        return json_reply(user_wire(user), status=201)

    async def get_user(self, request: web.Request) -> web.Response:
        identity = await caller(request)
        service = request.app[SERVICE]
        user = await request.app[ACCOUNTS].profile(request.match_info["user_id"])
        status = await service.presence.status(user.username)
        own = identity.user_id == user.id or identity.admin
        return json_reply(user_wire(user, status, email=own))

    async def create_room(self, request: web.Request) -> web.Response:
        body = schemas.load(self._create_room, await json_body(request))
        identity = await _room_creator(request, body.get("ownerId"))
        try:
            room = await request.app[ACCESS].create_room(identity, body["name"], public=body["public"])
        except ChatError as exc:
            raise ChatError(exc.code, exc.message, field="name") from None
        return json_reply(room_wire(room), status=201)

    async def public_rooms(self, request: web.Request) -> web.Response:
        await caller(request)
        query = schemas.load(self._room_list, dict(request.query))
        store = request.app[SERVICE].store
        rooms = await store.public_rooms(limit=query["limit"], after=query.get("after"))
        following = rooms[-1].id if len(rooms) == query["limit"] else None
        return json_reply({"rooms": [room_wire(room) for room in rooms], "next": following})

    async def member_rooms(self, request: web.Request) -> web.Response:
        """The caller's rooms, direct messages aside: those where they have a role (owner, admin, member),
        with it, and those they joined at least once (role null); each with where the caller stands in it
        (``lastRead``, ``unread``, ``lastMessage``)."""
        identity = await caller(request)
        roles = {room.id: role for room, role in await request.app[ACCESS].member_rooms(identity)}
        listed = await request.app[SERVICE].room_list(identity, list(roles))
        rooms = [
            room_wire(room) | {"role": roles.get(room.id)} | reading_wire(reading)
            for room, reading in listed
            if not room.id.startswith(DM_PREFIX)
        ]
        return json_reply({"rooms": rooms})

    async def reads(self, request: web.Request) -> web.Response:
        """Read receipts: who read up to which seq; 403 where the room keeps them private."""
        identity = await caller(request)
        room = await request.app[ACCESS].readable(identity, request.match_info["room_id"])
        if not room.receipts and not await request.app[ACCESS].moderates(identity, room):
            raise ChatError(errors.FORBIDDEN, f"room {room.id!r} does not show read receipts")
        marks = await request.app[SERVICE].store.read_marks(room.id, limit=READS_MAX)
        return json_reply({"reads": [{"user": mark.user, "seq": mark.seq} for mark in marks]})

    async def messages(self, request: web.Request) -> web.Response:
        identity = await caller(request)
        query = schemas.load(self._history, dict(request.query))
        service = request.app[SERVICE]
        room_id = request.match_info["room_id"]
        # Private and direct-message rooms: members only, exactly as for join_room.
        await request.app[ACCESS].readable(identity, room_id)
        page = await service.read_page(
            room_id, before=query.get("before"), after=query.get("after"), limit=query.get("limit")
        )
        return json_reply(
            {"messages": [message_wire(message) for message in page.messages], "hasMore": page.has_more}
        )

    async def changes(self, request: web.Request) -> web.Response:
        """What changed in older messages since a change number: the REST form of join_room's catch-up."""
        identity = await caller(request)
        query = schemas.load(self._changes, dict(request.query))
        room_id = request.match_info["room_id"]
        await request.app[ACCESS].readable(identity, room_id)
        page, change = await request.app[SERVICE].read_changes(
            room_id,
            since_change=query["sinceChange"],
            upto_seq=query.get("uptoSeq"),
            limit=query.get("limit"),
        )
        messages = [message_wire(message) for message in page.messages]
        return json_reply({"messages": messages, "hasMore": page.has_more, "change": change})

    async def audit(self, request: web.Request) -> web.Response:
        """The moderation audit trail, newest first: every room's for server administrators, one room's
        (``room=``) for its owner and admins."""
        identity = await caller(request)
        query = schemas.load(self._audit, dict(request.query))
        entries = await request.app[MODERATION].audit(identity, query.get("room"), query["limit"])
        return json_reply({"entries": [audit_wire(entry) for entry in entries]})

    async def restricted(self, kind: str, key: str, request: web.Request) -> web.Response:
        """A room's bans (or mutes) in force, newest first, for its owner and admins and server
        administrators: ``{bans: [...]}`` (or ``{mutes: [...]}``)."""
        identity = await caller(request)
        query = schemas.load(self._restricted, dict(request.query))
        moderation = request.app[MODERATION]
        found = await moderation.restricted(identity, request.match_info["room_id"], kind, query["limit"])
        return json_reply({key: [restriction_wire(restriction) for restriction in found]})

    async def search(self, request: web.Request) -> web.Response:
        """Full-text search over the rooms the caller may read (one room with ``room=``)."""
        identity = await caller(request)
        query = schemas.load(self._search, dict(request.query))
        access = request.app[ACCESS]
        if "room" in query:
            rooms = [(await access.readable(identity, query["room"])).id]
        else:
            rooms = await access.readable_rooms(identity)
        store = request.app[SERVICE].store
        found = await store.search(query["q"], rooms=rooms, limit=query["limit"] + 1, skip=query["skip"])
        more = len(found) > query["limit"]
        following = query["skip"] + query["limit"] if more else None
        return json_reply(
            {"messages": [message_wire(m) for m in found[: query["limit"]]], "nextSkip": following}
        )

    async def stats(self, request: web.Request) -> web.Response:
        service = request.app[SERVICE]
        counts = await service.store.counts()
        pods = await service.presence.pods()
        return json_reply(
            {
                "pod": service.settings.pod_name,
                "uptimeSeconds": round(time.monotonic() - request.app[STARTED], 3),
                "connections": service.connection_count,
                # The cluster (this process alone without Redis): every live process's connections.
                "pods": [{"pod": name, "connections": pods[name]} for name in sorted(pods)],
                "clusterConnections": sum(pods.values()),
                "onlineUsers": await service.presence.online_users(),
                "activeRooms": await service.presence.active_rooms(),
                "users": counts.users,
                "rooms": counts.rooms,
                "messages": counts.messages,
            }
        )
