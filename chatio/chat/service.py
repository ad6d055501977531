"""The chat domain: connections, rooms, messages, history. Imports neither aiohttp nor socketio.

:class:`ChatService` decides; it tells the outside world what happened through the
:class:`~chatio.chat.ports.Outbox` protocol (implemented over Socket.IO in :mod:`chatio.realtime.outbox`;
a recorder in ``tests/chat/recording.py``) and persists through the ``Store`` protocol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable
from typing import Any, TypeVar

from chatio import errors
from chatio.accounts.identity import Identity
from chatio.chat import deadline
from chatio.chat.catchup import catch_up
from chatio.chat.changes import MessageChanges
from chatio.chat.connections import Connection
from chatio.chat.history import History
from chatio.chat.indicators import TypingIndicators
from chatio.chat.mutes import Mutes
from chatio.chat.names import DisplayNames
from chatio.chat.ports import Admission, OpenAdmission, Outbox, user_room
from chatio.chat.reads import Reading, ReadMarks
from chatio.chat.wire import message_wire, room_wire
from chatio.config import Settings
from chatio.errors import ChatError
from chatio.presence import OFFLINE, MemberState, Presence, RoomFull
from chatio.ratelimit import RateLimiter
from chatio.store import (
    Conflict,
    Draft,
    Message,
    Page,
    Quote,
    Room,
    Store,
    excerpt,
)
from chatio.store.access import BAN, MUTE

__all__ = ["ChatService", "Joined"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Joined:
    room: Room
    members: list[MemberState]
    history: list[Message]
    reset: bool
    #: Older messages (``seq <= sinceSeq``) edited, deleted or reacted to after ``sinceChange``.
    changes: list[Message] = dataclasses.field(default_factory=list)
    #: The room's latest change number, for the client's next ``sinceChange``.
    change: int = 0
    reading: Reading | None = None
    #: The members' display names, by username.
    names: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The joining user's role in the room (owner, admin, member), None without one.
    role: str | None = None


class ChatService:
    """One per process. Every public coroutine raises :class:`ChatError` for a refused command."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        presence: Presence,
        limiter: RateLimiter,
        outbox: Outbox,
        admission: Admission | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.presence = presence
        self.admission: Admission = admission or OpenAdmission()
        self._limiter = limiter
        self._outbox = outbox
        self._connections: dict[str, Connection] = {}
        self._local_rooms: dict[str, set[str]] = {}
        self.reads = ReadMarks(store)
        self.mutes = Mutes()
        self.changes = MessageChanges(store, outbox, self.admission)
        self.names = DisplayNames(store)
        self._history = History(settings, store)
        self.typing = TypingIndicators(settings.typing_timeout_seconds, outbox, self.names, self._user_sids)

    # --- connections -----------------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def local_room_count(self) -> int:
        """Rooms with at least one socket on this process."""
        return len(self._local_rooms)

    def connection(self, sid: str) -> Connection:
        return self._connections[sid]

    def sids(self) -> list[str]:
        return list(self._connections)

    async def connect(self, sid: str, identity: Identity) -> None:
        self._connections[sid] = Connection(sid, identity)
        await self.names.learn(identity)
        await self.presence.connect(identity.username, sid)

    async def disconnect(self, sid: str) -> None:
        connection = self._connections.get(sid)
        if connection is None:
            return
        user = connection.identity.username
        last = await self.presence.disconnect(user, sid)
        if last and connection.rooms:
            await self._outbox.emit(
                "presence",
                {"user": user, "displayName": self.names.of(user), "status": OFFLINE},
                to=sorted(connection.rooms),
                skip=sid,
            )
        for room in sorted(connection.rooms):
            await self._leave(connection, room)
        del self._connections[sid]

    # --- rooms -----------------------------------------------------------------------------------

    async def join(
        self, sid: str, room_id: str, since_seq: int | None = None, since_change: int | None = None
    ) -> Joined:
        connection = self._connections[sid]
        user = connection.identity.username
        room = await self._room_for_join(room_id, connection.identity)
        restrictions = await self._store_call(self.admission.restrictions(connection.identity, room_id))
        self.mutes.admit(connection.identity.user_id, room_id, restrictions)
        if room_id not in connection.rooms:
            if len(connection.rooms) >= self.settings.rooms_per_connection:
                raise ChatError(
                    errors.TOO_MANY_ROOMS,
                    f"a connection may join at most {self.settings.rooms_per_connection} rooms",
                )
            try:
                # The limit is checked and the seat taken in one step (across processes with Redis).
                first = await self.presence.join(room_id, user, sid, limit=self.settings.room_max_members)
            except RoomFull as full:
                raise ChatError(errors.ROOM_FULL, str(full)) from None
            connection.rooms.add(room_id)
            self._local_rooms.setdefault(room_id, set()).add(sid)
            await self._outbox.enter(sid, room_id)
            if first:
                joined = {"room": room_id, "user": user, "displayName": self.names.of(user)}
                await self._outbox.emit("user_joined", joined, to=room_id, skip=sid)
        settings = self.settings
        caught = await self._store_call(
            catch_up(
                self.store,
                room_id,
                since_seq,
                since_change,
                page_size=settings.history_page_size,
                most=settings.catchup_max,
            )
        )
        members = await self.presence.members(room_id)
        reading = await self._store_call(self.reads.reading(connection.identity, room_id, first_visit=True))
        names = await self.names.many(member.user for member in members)
        role = await self._store_call(self.admission.role(connection.identity, room))
        return Joined(
            room, members, caught.history, caught.reset, caught.changes, caught.change, reading, names, role
        )

    async def apply(self, signal: dict[str, Any]) -> None:
        """Carry out a moderation signal (from this or another process) on this process's sockets."""
        action, room_id, user_id = signal.get("action"), signal.get("room"), signal.get("userId")
        if not isinstance(room_id, str) or not isinstance(user_id, str):
            return
        if action in ("kick", BAN):
            for connection in list(self._connections.values()):
                if connection.identity.user_id == user_id and room_id in connection.rooms:
                    await self._leave(connection, room_id)
        elif action == MUTE:
            until = signal.get("until")
            if any(c.identity.user_id == user_id for c in self._connections.values()):
                self.mutes.mute(user_id, room_id, until if isinstance(until, int) else None)
        elif action == "unmute":
            self.mutes.unmute(user_id, room_id)

    async def leave(self, sid: str, room_id: str) -> None:
        connection = self._connections[sid]
        if room_id not in connection.rooms:
            raise ChatError(errors.NOT_IN_ROOM, f"you are not in room {room_id!r}", field="room")
        await self._leave(connection, room_id)

    async def _leave(self, connection: Connection, room_id: str) -> None:
        user = connection.identity.username
        connection.rooms.discard(room_id)
        sockets = self._local_rooms.get(room_id)
        if sockets is not None:
            sockets.discard(connection.sid)
            if not sockets:
                del self._local_rooms[room_id]
        await self._outbox.exit(connection.sid, room_id)
        if await self.presence.leave(room_id, user, connection.sid):
            await self.typing.stop(room_id, user, skip=connection.sid)
            left = {"room": room_id, "user": user, "displayName": self.names.of(user)}
            await self._outbox.emit("user_left", left, to=room_id)

    async def _room_for_join(self, room_id: str, identity: Identity) -> Room:
        room = await self.store.get_room(room_id)
        await self.admission.admit(identity, room_id, room)
        if room is not None:
            return room
        if not self.settings.auto_create_rooms:
            raise ChatError(errors.ROOM_NOT_FOUND, f"room {room_id!r} does not exist", field="room")
        try:
            return await self.store.create_room(room_id, room_id, public=True, owner=identity.user_id)
        except Conflict:
            existing = await self.store.get_room(room_id)
            if existing is None:  # pragma: no cover - deleted in between
                raise ChatError(errors.ROOM_NOT_FOUND, f"room {room_id!r} does not exist") from None
            return existing

    def _require_member(self, sid: str, room_id: str) -> Connection:
        connection = self._connections[sid]
        if room_id not in connection.rooms:
            raise ChatError(errors.NOT_IN_ROOM, f"join room {room_id!r} first", field="room")
        return connection

    # --- messages --------------------------------------------------------------------------------

    async def send(
        self,
        sid: str,
        room_id: str,
        text: str,
        client_msg_id: str | None = None,
        reply_to: str | None = None,
    ) -> Message:
        """Store and broadcast a message (a reply when ``reply_to`` names a message of the room); return it
        once stored."""
        connection = self._require_member(sid, room_id)
        identity = connection.identity
        self.mutes.check(identity.user_id, room_id)
        await self._limit(identity)
        quote = None
        if reply_to is not None:
            parent = await self._store_call(self.changes.message(room_id, reply_to, "replyTo"))
            quote = Quote(
                parent.id,
                parent.seq,
                parent.user_id,
                parent.user,
                None if parent.deleted else excerpt(parent.text),
            )
        display = self.names.of(identity.username)
        draft = Draft(room_id, identity.user_id, identity.username, text, client_msg_id, quote, display)
        message = await self._store_call(self.store.append(draft))
        await self.typing.stop(room_id, identity.username, skip=sid)
        await self._outbox.emit("message", message_wire(message), to=room_id, skip=sid)
        return message

    async def _limit(self, identity: Identity) -> None:
        """Spend one of the user's messages a minute (sending, editing, deleting and reacting share them)."""
        wait = await self._limiter.acquire(f"msg:{identity.user_id}")
        if wait > 0:
            raise ChatError(
                errors.RATE_LIMITED,
                f"more than {self.settings.rate_limit_per_minute} messages a minute",
                retryAfterMs=int(wait * 1000) + 1,
            )

    # --- changes to messages (chatio/chat/changes.py decides) ----------------------------------------

    async def edit(self, sid: str, room_id: str, message_id: str, text: str) -> Message:
        """Replace the text of one's own message; the others get ``message_updated``."""
        identity = self._require_member(sid, room_id).identity
        self.mutes.check(identity.user_id, room_id)
        await self._limit(identity)
        return await self._store_call(self.changes.edit(identity, room_id, message_id, text, skip=sid))

    async def delete(self, sid: str, room_id: str, message_id: str) -> Message:
        """Delete a message (its author, the room's owner and admins, server administrators, these even
        without joining); the others get ``message_deleted`` with the tombstone."""
        identity = self._moderator_or_member(sid, room_id)
        await self._limit(identity)
        return await self._store_call(self.changes.delete(identity, room_id, message_id, skip=sid))

    async def react(self, sid: str, room_id: str, message_id: str, emoji: str, *, add: bool) -> Message:
        """Add (or take back) one's ``emoji`` on a message; the others get ``reaction``."""
        identity = self._require_member(sid, room_id).identity
        await self._limit(identity)
        return await self._store_call(
            self.changes.react(identity, room_id, message_id, emoji, add=add, skip=sid)
        )

    def _moderator_or_member(self, sid: str, room_id: str) -> Identity:
        """The socket's identity; server administrators act in rooms they have not joined."""
        identity = self._connections[sid].identity
        return identity if identity.admin else self._require_member(sid, room_id).identity

    # --- read marks ------------------------------------------------------------------------------

    async def reading(self, identity: Identity, room_id: str) -> Reading:
        """The user's :class:`~chatio.chat.reads.Reading` of a room."""
        return await self._store_call(self.reads.reading(identity, room_id))

    async def room_list(self, identity: Identity, rooms: list[str]) -> list[tuple[Room, Reading]]:
        """The user's rooms (those they ever joined, and ``rooms``), each with their reading."""
        return await self._store_call(self.reads.room_list(identity, rooms))

    async def mark_read(self, sid: str, room_id: str, seq: int) -> Reading:
        """Raise the user's read mark (never lower it, whichever device asks); the user's other devices,
        and the room's members unless the room opted out of receipts, get ``read {room, user, seq}``."""
        identity = self._require_member(sid, room_id).identity
        before, mark = await self._store_call(self.reads.mark(identity, room_id, seq))
        if before is None or mark > before:
            room = await self._store_call(self.store.get_room(room_id))
            to = [user_room(identity.user_id)] + ([room_id] if room is None or room.receipts else [])
            await self._outbox.emit(
                "read", {"room": room_id, "user": identity.username, "seq": mark}, to=to, skip=sid
            )
        return await self.reading(identity, room_id)

    async def set_room_options(
        self,
        sid: str,
        room_id: str,
        *,
        receipts: bool | None = None,
        retention: tuple[int | None] | None = None,
    ) -> Room:
        """The room's owner and admins (and server administrators) turn read receipts on or off, and set
        the room's retention in days (``retention``: a 1-tuple; ``(None,)`` goes back to the server's)."""
        identity = self._moderator_or_member(sid, room_id)
        if not await self._store_call(self.changes.moderates(identity, room_id)):
            raise ChatError(
                errors.FORBIDDEN, "only the room's owner and admins change its options", field="room"
            )
        room: Room | None = None
        if receipts is not None:
            room = await self._store_call(self.store.set_receipts(room_id, receipts))
        if retention is not None:
            room = await self._store_call(self.store.set_retention(room_id, retention[0]))
        if room is None:
            raise ChatError(errors.ROOM_NOT_FOUND, f"room {room_id!r} does not exist", field="room")
        await self._outbox.emit("room_updated", room_wire(room), to=room_id, skip=sid)
        return room

    # --- reading ---------------------------------------------------------------------------------

    async def history(
        self, sid: str, room_id: str, *, before: int | None, after: int | None, limit: int | None
    ) -> Page:
        self._require_member(sid, room_id)
        return await self.read_page(room_id, before=before, after=after, limit=limit)

    async def read_page(
        self, room_id: str, *, before: int | None, after: int | None, limit: int | None
    ) -> Page:
        """A history page for REST and sockets, ``limit`` capped at the configured maximum."""
        return await self._history.page(room_id, before=before, after=after, limit=limit)

    async def read_changes(
        self, room_id: str, *, since_change: int, upto_seq: int | None, limit: int | None
    ) -> tuple[Page, int]:
        """Messages (up to ``upto_seq``) changed after ``since_change``, and the room's latest change."""
        return await self._history.changes(room_id, since_change=since_change, upto_seq=upto_seq, limit=limit)

    async def _store_call(self, call: Awaitable[T]) -> T:
        return await deadline.within(self.settings.store_timeout_seconds + 1.0, call)

    # --- typing and status -----------------------------------------------------------------------

    async def set_typing(self, sid: str, room_id: str, typing: bool) -> None:
        user = self._require_member(sid, room_id).identity.username
        await self.typing.set(room_id, user, typing, skip=sid)

    def _user_sids(self, room_id: str, user: str) -> list[str]:
        sockets = self._local_rooms.get(room_id, ())
        return [sid for sid in sockets if self._connections[sid].identity.username == user]

    async def set_status(self, sid: str, status: str) -> None:
        user = self._connections[sid].identity.username
        await self.presence.set_status(user, status)
        rooms = await self.presence.rooms_of(user)
        if rooms:
            payload = {"user": user, "displayName": self.names.of(user), "status": status}
            await self._outbox.emit("presence", payload, to=rooms)

    def close(self) -> None:
        self.typing.close()
