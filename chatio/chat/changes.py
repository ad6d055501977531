"""Changes to stored messages (docs/protocol.md, edit_message / delete_message, react / unreact): edits by
their author, deletions by the author or the room's moderators (a tombstone keeps the seq), reactions.
Each change takes the room's next change number, which ``join_room``'s catch-up follows
(:mod:`chatio.chat.catchup`).

The chat core checks who the socket is, that it joined the room, its mute and its message budget, then
hands over to :class:`MessageChanges`, which decides the rest and tells the room.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chatio import errors
from chatio.accounts.identity import Identity
from chatio.chat.ports import Admission, Outbox
from chatio.chat.wire import message_wire
from chatio.errors import ChatError
from chatio.store import Message, Store, new_id, now_ms
from chatio.store.access import AuditEntry


class MessageChanges:
    """Every coroutine raises :class:`ChatError` for a refused change, and the store's errors."""

    def __init__(self, store: Store, outbox: Outbox, admission: Admission) -> None:
        self._store = store
        self._outbox = outbox
        self._admission = admission
        #: Where deletions of others' messages are recorded (the audit trail), when there is one.
        self.audit: Callable[[AuditEntry], Awaitable[None]] | None = None

    async def message(self, room_id: str, message_id: str, field: str = "id") -> Message:
        """The message, tombstones included; ``not_found`` on ``field`` when there is none."""
        message = await self._store.get_message(room_id, message_id)
        if message is None:
            raise ChatError(errors.NOT_FOUND, f"no message {message_id!r} in room {room_id!r}", field=field)
        return message

    async def moderates(self, identity: Identity, room_id: str) -> bool:
        """Server administrators everywhere; the room's owner and admins in it."""
        room = await self._store.get_room(room_id)
        return identity.admin or (room is not None and await self._admission.moderates(identity, room))

    async def edit(
        self, identity: Identity, room_id: str, message_id: str, text: str, *, skip: str
    ) -> Message:
        """Replace the text of one's own message; the room's other sockets get ``message_updated``."""
        message = await self.message(room_id, message_id)
        if message.user_id != identity.user_id:
            raise ChatError(errors.FORBIDDEN, "only its author edits a message", field="id")
        edited = await self._store.edit(room_id, message_id, text)
        if edited is None:
            raise ChatError(errors.NOT_FOUND, f"message {message_id!r} was deleted", field="id")
        await self._outbox.emit("message_updated", message_wire(edited), to=room_id, skip=skip)
        return edited

    async def delete(self, identity: Identity, room_id: str, message_id: str, *, skip: str) -> Message:
        """Delete a message (its author, the room's owner and admins, server administrators); the room's
        other sockets get ``message_deleted`` with the tombstone. A tombstone is deleted again silently."""
        message = await self.message(room_id, message_id)
        if message.deleted:
            return message
        if message.user_id != identity.user_id and not await self.moderates(identity, room_id):
            raise ChatError(
                errors.FORBIDDEN,
                "only its author or the room's owner and admins delete a message",
                field="id",
            )
        tombstone = await self._store.delete(room_id, message_id)
        if tombstone is None:  # pragma: no cover - removed by retention in between
            raise ChatError(errors.NOT_FOUND, f"no message {message_id!r} in room {room_id!r}", field="id")
        if message.user_id != identity.user_id and self.audit is not None:
            await self.audit(
                AuditEntry(
                    new_id(),
                    room_id,
                    "delete_message",
                    identity.user_id,
                    identity.username,
                    message.user_id,
                    message.user,
                    "",
                    now_ms(),
                    None,
                    message_id,
                )
            )
        await self._outbox.emit("message_deleted", message_wire(tombstone), to=room_id, skip=skip)
        return tombstone

    async def react(
        self, identity: Identity, room_id: str, message_id: str, emoji: str, *, add: bool, skip: str
    ) -> Message:
        """Add (or take back) one's ``emoji``; when that changed something, the room's other sockets get
        ``reaction``."""
        before = await self.message(room_id, message_id)
        after = await self._store.react(room_id, message_id, emoji, identity.username, add=add)
        if after is None or before.deleted:
            raise ChatError(errors.NOT_FOUND, f"message {message_id!r} was deleted", field="id")
        if after.change != before.change:
            payload: dict[str, Any] = {
                "room": room_id,
                "id": message_id,
                "seq": after.seq,
                "emoji": emoji,
                "user": identity.username,
                "added": add,
                "reactions": message_wire(after)["reactions"],
                "change": after.change,
            }
            await self._outbox.emit("reaction", payload, to=room_id, skip=skip)
        return after
