"""Who may enter which room: public and private rooms, owners and admins, invitations, direct messages.

The rules (README, "Security"):

* A **public** room admits everyone signed in (guests too, where guests are allowed).
* A **private** room admits its members only: its owner (the creator), the admins the owner names and
  the users who accepted an invitation. The owner and admins invite; the owner names admins.
* A **direct-message** room ``dm:<user id>:<user id>`` (the two ids sorted, so a pair has exactly one)
  admits exactly those two users, whatever any store says; ``dm:`` ids are reserved, never auto-created.

:class:`RoomAccess` is the :class:`~chatio.chat.ports.Admission` of the chat core and REST, and carries out
the invitation and direct-message commands. It imports neither aiohttp nor socketio: it tells users what
happened through the chat :class:`~chatio.chat.ports.Outbox`, addressed to
:func:`~chatio.chat.ports.user_room`, the Socket.IO room every socket of a user is in (on every process).
"""

from __future__ import annotations

import dataclasses
from typing import Final

from chatio import errors
from chatio.accounts.identity import Identity
from chatio.chat.ports import Outbox, user_room
from chatio.errors import ChatError
from chatio.store import Conflict, Room, Store, User, now_ms
from chatio.store.access import ADMIN, MEMBER, OWNER, AccessStore, Invitation, Restriction
from chatio.store.accounts import AccountStore

DM_PREFIX: Final = "dm:"
__all__ = ["DirectRoom", "RoomAccess", "dm_pair", "dm_room_id"]


def dm_room_id(first: str, second: str) -> str:
    low, high = sorted((first, second))
    return f"{DM_PREFIX}{low}:{high}"


def dm_pair(room_id: str) -> tuple[str, str] | None:
    """The two user ids of a direct-message room id; None for any other room."""
    if not room_id.startswith(DM_PREFIX):
        return None
    first, colon, second = room_id[len(DM_PREFIX) :].partition(":")
    return (first, second) if colon and first and second else None


@dataclasses.dataclass(frozen=True, slots=True)
class DirectRoom:
    room: Room
    peer: User


#: Public rooms a search without ``room`` looks through (the first ones by id); name a room to go further.
READABLE_PUBLIC_MAX: Final = 1000


class RoomAccess:
    """See the module docstring. Every coroutine raises :class:`ChatError` for a refused request."""

    def __init__(self, store: Store, acl: AccessStore, accounts: AccountStore, outbox: Outbox) -> None:
        self.store = store
        self.acl = acl
        self._accounts = accounts
        self._outbox = outbox

    # --- admission -------------------------------------------------------------------------------------

    async def admit(self, identity: Identity, room_id: str, room: Room | None) -> None:
        pair = dm_pair(room_id)
        if room_id.startswith(DM_PREFIX):
            if room is None or pair is None:
                raise ChatError(
                    errors.FORBIDDEN, "dm: rooms are direct-message rooms: use open_dm", field="room"
                )
            if identity.user_id not in pair:
                raise ChatError(errors.FORBIDDEN, "this direct-message room is not yours", field="room")
            return
        if room is None or room.public:
            return
        if await self.role(identity, room) is None:
            raise ChatError(
                errors.FORBIDDEN, f"room {room_id!r} is private: you need an invitation", field="room"
            )

    async def restrictions(self, identity: Identity, room_id: str) -> list[Restriction]:
        return await self.acl.restrictions(room_id, identity.user_id, now=now_ms())

    async def moderates(self, identity: Identity, room: Room) -> bool:
        """Server administrators everywhere; a room's owner and admins in it (never in direct messages)."""
        if identity.admin:
            return True
        return not room.id.startswith(DM_PREFIX) and await self.role(identity, room) in (OWNER, ADMIN)

    async def role(self, identity: Identity, room: Room) -> str | None:
        """The user's role in ``room``: the owner recorded with the room counts as owner."""
        if room.owner is not None and room.owner == identity.user_id:
            return OWNER
        return await self.acl.role(room.id, identity.user_id)

    async def readable(self, identity: Identity, room_id: str) -> Room:
        """The room, when ``identity`` may read its history (REST); refused like a join otherwise."""
        room = await self.store.get_room(room_id)
        if room is None:
            raise ChatError(errors.ROOM_NOT_FOUND, f"room {room_id!r} does not exist")
        await self.admit(identity, room_id, room)
        return room

    async def readable_rooms(self, identity: Identity) -> list[str]:
        """Every room whose history ``identity`` may read: public rooms (up to ``READABLE_PUBLIC_MAX``,
        by id), rooms where the user has a role, and the user's direct-message rooms."""
        readable: set[str] = set()
        after: str | None = None
        while len(readable) < READABLE_PUBLIC_MAX:
            rooms = await self.store.public_rooms(limit=200, after=after)
            readable.update(room.id for room in rooms)
            if len(rooms) < 200:
                break
            after = rooms[-1].id
        # A role (member, admin, owner) is kept for private rooms and for both ends of a direct message.
        readable.update(membership.room for membership in await self.acl.rooms_of(identity.user_id))
        return sorted(readable)

    # --- rooms -----------------------------------------------------------------------------------------

    async def create_room(self, identity: Identity, room_id: str, *, public: bool) -> Room:
        if room_id.startswith(DM_PREFIX):
            raise ChatError(errors.FORBIDDEN, "dm: room ids are reserved for direct messages", field="room")
        try:
            room = await self.store.create_room(room_id, room_id, public=public, owner=identity.user_id)
        except Conflict:
            raise ChatError(errors.CONFLICT, f"room {room_id!r} exists", field="room") from None
        await self.acl.set_role(room_id, identity.user_id, OWNER)
        return room

    async def set_role(self, identity: Identity, room_id: str, username: str, role: str) -> None:
        """The owner makes a user an admin or a plain member (adding them if they were not one); the room
        and the user's sockets get ``role_changed``."""
        room = await self._managed_room(room_id)
        if await self.role(identity, room) != OWNER:
            raise ChatError(errors.FORBIDDEN, "only the room's owner assigns roles", field="room")
        user = await self._user(username)
        if user.id == identity.user_id or user.id == room.owner:
            raise ChatError(errors.INVALID_PAYLOAD, "the owner's role cannot change", field="user")
        await self.acl.set_role(room_id, user.id, role)
        changed = {"room": room_id, "user": username, "role": role, "by": identity.username}
        await self._outbox.emit("role_changed", changed, to=[room_id, user_room(user.id)])

    # --- invitations -----------------------------------------------------------------------------------

    async def invite(self, identity: Identity, room_id: str, username: str) -> Invitation:
        """Invite a user; they get ``invited``, the room gets ``user_invited``."""
        room = await self._managed_room(room_id)
        if await self.role(identity, room) not in (OWNER, ADMIN):
            raise ChatError(errors.FORBIDDEN, "only the room's owner and admins invite", field="room")
        invitee = await self._user(username)
        if invitee.id == identity.user_id or await self.role(_as(invitee), room) is not None:
            raise ChatError(errors.CONFLICT, f"{username!r} is a member already", field="user")
        invitation = Invitation(room_id, invitee.id, identity.user_id, identity.username, now_ms())
        if not await self.acl.invite(invitation):
            raise ChatError(errors.CONFLICT, f"{username!r} is invited already", field="user")
        await self._outbox.emit(
            "invited", {"room": room_id, "by": identity.username}, to=user_room(invitee.id)
        )
        await self._outbox.emit(
            "user_invited", {"room": room_id, "user": username, "by": identity.username}, to=room_id
        )
        return invitation

    async def accept(self, identity: Identity, room_id: str) -> Invitation:
        """Take the invitation and become a member; the caller then joins (the room sees ``user_joined``)."""
        invitation = await self.acl.take_invitation(room_id, identity.user_id)
        if invitation is None:
            raise ChatError(errors.NOT_FOUND, f"no invitation to room {room_id!r}", field="room")
        await self.acl.set_role(room_id, identity.user_id, MEMBER)
        return invitation

    async def decline(self, identity: Identity, room_id: str) -> Invitation:
        """Drop the invitation; the inviter gets ``invite_declined``."""
        invitation = await self.acl.take_invitation(room_id, identity.user_id)
        if invitation is None:
            raise ChatError(errors.NOT_FOUND, f"no invitation to room {room_id!r}", field="room")
        await self._outbox.emit(
            "invite_declined", {"room": room_id, "user": identity.username}, to=user_room(invitation.by)
        )
        return invitation

    async def invitations(self, identity: Identity) -> list[Invitation]:
        return await self.acl.invitations_for(identity.user_id)

    # --- direct messages -------------------------------------------------------------------------------

    async def open_dm(self, identity: Identity, username: str) -> DirectRoom:
        """The pair's room, created on first use (the peer then gets ``dm_opened``)."""
        peer = await self._user(username)
        if peer.id == identity.user_id:
            raise ChatError(errors.INVALID_PAYLOAD, "a direct message needs another user", field="user")
        room_id = dm_room_id(identity.user_id, peer.id)
        room = await self.store.get_room(room_id)
        if room is None:
            try:
                room = await self.store.create_room(room_id, room_id, public=False, owner=None)
            except Conflict:
                room = await self.store.get_room(room_id)
                if room is None:  # pragma: no cover - deleted in between
                    raise ChatError(errors.UNAVAILABLE, "try again") from None
            else:
                await self._outbox.emit(
                    "dm_opened", {"room": room_id, "user": identity.username}, to=user_room(peer.id)
                )
            for member in (identity.user_id, peer.id):
                await self.acl.set_role(room_id, member, MEMBER)
        return DirectRoom(room, peer)

    async def direct_rooms(self, identity: Identity) -> list[DirectRoom]:
        """The user's direct-message rooms, with the user at the other end (deleted peers left out)."""
        found = []
        for membership in await self.acl.rooms_of(identity.user_id, prefix=DM_PREFIX):
            pair = dm_pair(membership.room)
            if pair is None or identity.user_id not in pair:
                continue
            peer_id = pair[1] if pair[0] == identity.user_id else pair[0]
            room, peer = await self.store.get_room(membership.room), await self.store.get_user(peer_id)
            if room is not None and peer is not None and not await self._accounts.is_deleted(peer_id):
                found.append(DirectRoom(room, peer))
        return found

    async def member_rooms(self, identity: Identity) -> list[tuple[Room, str]]:
        """The rooms (direct-message rooms aside) where the user has a role, with that role, by id."""
        found = []
        for membership in await self.acl.rooms_of(identity.user_id):
            if membership.room.startswith(DM_PREFIX):
                continue
            room = await self.store.get_room(membership.room)
            if room is not None:
                found.append((room, membership.role))
        return found

    async def forget_user(self, user_id: str) -> None:
        await self.acl.forget_user(user_id)

    # --- helpers ---------------------------------------------------------------------------------------

    async def _managed_room(self, room_id: str) -> Room:
        if room_id.startswith(DM_PREFIX):
            raise ChatError(errors.FORBIDDEN, "direct-message rooms have exactly two members", field="room")
        room = await self.store.get_room(room_id)
        if room is None:
            raise ChatError(errors.ROOM_NOT_FOUND, f"room {room_id!r} does not exist", field="room")
        return room

    async def user(self, username: str) -> User:
        """The user named ``username``; ``not_found`` when there is none (or it was deleted)."""
        return await self._user(username)

    async def _user(self, username: str) -> User:
        user = await self.store.find_user(username)
        if user is None or await self._accounts.is_deleted(user.id):
            raise ChatError(errors.NOT_FOUND, f"no user {username!r}", field="user")
        return user


def _as(user: User) -> Identity:
    return Identity(user.id, user.username, user.guest)
