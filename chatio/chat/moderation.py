"""Moderation: a room's owner and admins (and server administrators, in any room) kick, ban and mute
members; every action is kept in the audit trail, and every process applies it to its sockets at once.

* **kick**: the user's sockets leave the room now (a private room also loses them as members: they need a
  new invitation). They may join a public room again.
* **ban**: as kick, and ``join_room`` refuses them (``banned``) until ``unban`` or the ban's end.
* **mute**: ``send_message`` and ``edit_message`` refuse them (``muted``) for ``seconds``, or until
  ``unmute``.

Nobody acts on a room's owner; only the owner and server administrators act on the room's admins; only
server administrators act on server administrators; nobody on themself. Direct-message rooms have no
moderators, but server administrators.

How every process feels it at once: the acting process publishes a signal (:class:`Signals`: this process
alone by default, Redis pub/sub in a cluster, ``chatio.cluster.RedisSignals``) that each process's chat core
applies to its own sockets (:meth:`~chatio.chat.service.ChatService.apply`); a process that joins a socket
later reads the bans and mutes from the store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from chatio import errors
from chatio.accounts.identity import Identity
from chatio.chat.access import DM_PREFIX, RoomAccess
from chatio.chat.ports import Outbox, user_room
from chatio.errors import ChatError
from chatio.store import new_id, now_ms
from chatio.store.access import ADMIN, BAN, MUTE, OWNER, AuditEntry, Restriction
from chatio.store.accounts import AccountStore

KICK: Final = "kick"
UNBAN: Final = "unban"
UNMUTE: Final = "unmute"
ACTIONS: Final = (KICK, BAN, UNBAN, MUTE, UNMUTE)
#: Audit entries (or bans, or mutes) one REST request reads at most.
AUDIT_PAGE_MAX: Final = 500

Signal = dict[str, Any]
SignalHandler = Callable[[Signal], Awaitable[None]]


class Signals(Protocol):
    """Server-to-server notices: ``publish`` reaches ``handlers`` on every process, this one first."""

    handlers: list[SignalHandler]

    async def publish(self, signal: Signal) -> None: ...


class LocalSignals:
    """One process: a published signal goes straight to this process's handlers."""

    def __init__(self) -> None:
        self.handlers: list[SignalHandler] = []

    async def publish(self, signal: Signal) -> None:
        await self.deliver(signal)

    async def deliver(self, signal: Signal) -> None:
        for handler in self.handlers:
            await handler(signal)


def audit_wire(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "room": entry.room,
        "action": entry.action,
        "by": entry.actor,
        "byId": entry.actor_id,
        "user": entry.target,
        "userId": entry.target_id,
        "reason": entry.reason,
        "at": entry.at,
        "until": entry.until,
        "messageId": entry.message_id,
    }


def restriction_wire(restriction: Restriction) -> dict[str, Any]:
    """A ban or mute in a room's list: whom, by whom, why, since and until when (ms; null: until lifted)."""
    return {
        "user": restriction.user,
        "userId": restriction.user_id,
        "by": restriction.by,
        "reason": restriction.reason,
        "at": restriction.at,
        "until": restriction.until,
    }


class Moderation:
    """Carries out the moderation commands; every coroutine raises :class:`ChatError` when refused."""

    def __init__(self, access: RoomAccess, accounts: AccountStore, signals: Signals, outbox: Outbox) -> None:
        self._access = access
        self._accounts = accounts
        self._signals = signals
        self._outbox = outbox

    async def act(
        self,
        identity: Identity,
        action: str,
        room_id: str,
        username: str,
        *,
        reason: str,
        seconds: int | None,
    ) -> AuditEntry:
        """Kick, ban, unban, mute or unmute ``username`` in ``room_id``; the room and the user's sockets
        get ``moderated``."""
        room = await self._access.store.get_room(room_id)
        if room is None:
            raise ChatError(errors.ROOM_NOT_FOUND, f"room {room_id!r} does not exist", field="room")
        if room_id.startswith(DM_PREFIX) and not identity.admin:
            raise ChatError(errors.FORBIDDEN, "direct-message rooms have no moderators", field="room")
        actor_role = await self._access.role(identity, room)
        if not identity.admin and actor_role not in (OWNER, ADMIN):
            raise ChatError(errors.FORBIDDEN, "only the room's owner and admins moderate it", field="room")
        target = await self._access.user(username)
        if target.id == identity.user_id:
            raise ChatError(errors.INVALID_PAYLOAD, "you cannot moderate yourself", field="user")
        target_role = await self._access.role(Identity(target.id, target.username), room)
        account = await self._accounts.get_account(target.id)
        if (
            target_role == OWNER
            or (target_role == ADMIN and actor_role != OWNER and not identity.admin)
            or (account is not None and account.admin and not identity.admin)
        ):
            raise ChatError(errors.FORBIDDEN, f"you cannot {action} {username!r} in this room", field="user")
        if action == MUTE and seconds is None:
            raise ChatError(errors.INVALID_PAYLOAD, "seconds: a mute needs a duration", field="seconds")
        now = now_ms()
        until = None if seconds is None or action in (KICK, UNBAN, UNMUTE) else now + seconds * 1000
        held = (
            Restriction(room_id, target.id, action, until, username, identity.username, reason, now)
            if action in (BAN, MUTE)
            else None
        )
        await self._store(action, room_id, target.id, held, private=not room.public)
        entry = AuditEntry(
            new_id(),
            room_id,
            action,
            identity.user_id,
            identity.username,
            target.id,
            username,
            reason,
            now,
            until,
        )
        await self._access.acl.record(entry)
        await self._signals.publish({"action": action, "room": room_id, "userId": target.id, "until": until})
        notice = {"room": room_id, "action": action, "user": username, "by": identity.username}
        await self._outbox.emit(
            "moderated", notice | {"reason": reason, "until": until}, to=[room_id, user_room(target.id)]
        )
        return entry

    async def _store(
        self, action: str, room_id: str, user_id: str, held: Restriction | None, *, private: bool
    ) -> None:
        """Carry ``action`` out in the store; ``held`` is the ban or mute it imposes, if it is one."""
        acl = self._access.acl
        if action in (KICK, BAN) and private:
            await acl.remove_member(room_id, user_id)
        if held is not None:
            await acl.restrict(held)
        elif action == UNBAN:
            await acl.lift(room_id, user_id, BAN)
        elif action == UNMUTE:
            await acl.lift(room_id, user_id, MUTE)

    async def restricted(self, identity: Identity, room_id: str, kind: str, limit: int) -> list[Restriction]:
        """The bans (``kind`` :data:`BAN`) or mutes in force in a room, newest first, for those who may lift
        them: its owner and admins, and server administrators."""
        await self._moderated_room(identity, room_id, "bans and mutes")
        found = await self._access.acl.room_restrictions(
            room_id, kind, now=now_ms(), limit=min(limit, AUDIT_PAGE_MAX)
        )
        return [await self._named(restriction) for restriction in found]

    async def _named(self, restriction: Restriction) -> Restriction:
        """``restriction`` with its user's name (kept since names were stored with restrictions; looked up
        for older ones)."""
        if restriction.user is not None:
            return restriction
        user = await self._access.store.get_user(restriction.user_id)
        return dataclasses.replace(restriction, user=restriction.user_id if user is None else user.username)

    async def _moderated_room(self, identity: Identity, room_id: str, what: str) -> None:
        room = await self._access.store.get_room(room_id)
        if room is None:
            raise ChatError(errors.ROOM_NOT_FOUND, f"room {room_id!r} does not exist", field="room")
        if not await self._access.moderates(identity, room):
            raise ChatError(errors.FORBIDDEN, f"only the room's owner and admins read its {what}")

    async def audit(self, identity: Identity, room_id: str | None, limit: int) -> list[AuditEntry]:
        """The audit trail: every room's for server administrators, a room's for its owner and admins."""
        if room_id is None:
            if not identity.admin:
                raise ChatError(errors.FORBIDDEN, "only server administrators read every room's audit trail")
        else:
            await self._moderated_room(identity, room_id, "audit trail")
        return await self._access.acl.audit(room=room_id, limit=min(limit, AUDIT_PAGE_MAX))
