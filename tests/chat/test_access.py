"""Who may enter which room, decided by RoomAccess alone: memory stores and a recording outbox."""

from __future__ import annotations

import pytest

from chatio import errors
from chatio.accounts.identity import Identity
from chatio.chat.access import RoomAccess, dm_pair, dm_room_id
from chatio.chat.ports import user_room
from chatio.errors import ChatError
from chatio.store.access import ADMIN
from chatio.store.access_memory import MemoryAccessStore
from chatio.store.accounts_memory import MemoryAccountStore
from chatio.store.memory import MemoryStore
from tests.chat.recording import RecordingOutbox

pytestmark = pytest.mark.unit


class World:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.accounts = MemoryAccountStore()
        self.outbox = RecordingOutbox()
        self.access = RoomAccess(self.store, MemoryAccessStore(), self.accounts, self.outbox)

    async def user(self, name: str) -> Identity:
        user = await self.store.create_user(name, name)
        return Identity(user.id, name, guest=False)

    async def refused(self, identity: Identity, room_id: str) -> str:
        with pytest.raises(ChatError) as refused:
            await self.access.admit(identity, room_id, await self.store.get_room(room_id))
        return refused.value.code


async def test_public_rooms_admit_everyone_and_private_rooms_their_members() -> None:
    world = World()
    owner, stranger = await world.user("owner"), await world.user("stranger")
    await world.access.create_room(owner, "open", public=True)
    await world.access.create_room(owner, "closed", public=False)
    await world.access.admit(stranger, "open", await world.store.get_room("open"))
    await world.access.admit(owner, "closed", await world.store.get_room("closed"))
    assert await world.refused(stranger, "closed") == errors.FORBIDDEN
    assert sorted(await world.access.readable_rooms(stranger)) == ["open"]
    assert sorted(await world.access.readable_rooms(owner)) == ["closed", "open"]


async def test_an_invitation_accepted_makes_a_member_and_tells_both_sides() -> None:
    world = World()
    owner, guest = await world.user("owner"), await world.user("guest")
    await world.access.create_room(owner, "closed", public=False)
    await world.access.invite(owner, "closed", "guest")
    [invited] = world.outbox.events("invited")
    assert invited.to == user_room(guest.user_id) and invited.data == {"room": "closed", "by": "owner"}
    assert [e.to for e in world.outbox.events("user_invited")] == ["closed"]
    with pytest.raises(ChatError) as twice:
        await world.access.invite(owner, "closed", "guest")
    assert twice.value.code == errors.CONFLICT
    assert [i.room for i in await world.access.invitations(guest)] == ["closed"]
    await world.access.accept(guest, "closed")
    await world.access.admit(guest, "closed", await world.store.get_room("closed"))
    with pytest.raises(ChatError) as gone:
        await world.access.accept(guest, "closed")
    assert gone.value.code == errors.NOT_FOUND


async def test_a_declined_invitation_tells_the_inviter_and_admits_nobody() -> None:
    world = World()
    owner, guest = await world.user("owner"), await world.user("guest")
    await world.access.create_room(owner, "closed", public=False)
    await world.access.invite(owner, "closed", "guest")
    await world.access.decline(guest, "closed")
    [declined] = world.outbox.events("invite_declined")
    assert declined.to == user_room(owner.user_id)
    assert await world.refused(guest, "closed") == errors.FORBIDDEN


async def test_only_owners_and_admins_invite_and_only_owners_name_admins() -> None:
    world = World()
    owner, admin, member = await world.user("owner"), await world.user("admin"), await world.user("member")
    await world.user("newcomer")
    await world.access.create_room(owner, "closed", public=False)
    await world.access.set_role(owner, "closed", "admin", ADMIN)
    [named] = world.outbox.events("role_changed")
    assert named.data == {"room": "closed", "user": "admin", "role": ADMIN, "by": "owner"}
    assert named.to == ["closed", user_room(admin.user_id)]
    await world.access.invite(admin, "closed", "member")
    await world.access.accept(member, "closed")
    with pytest.raises(ChatError) as not_admin:
        await world.access.invite(member, "closed", "newcomer")
    assert not_admin.value.code == errors.FORBIDDEN
    with pytest.raises(ChatError) as not_owner:
        await world.access.set_role(admin, "closed", "member", ADMIN)
    assert not_owner.value.code == errors.FORBIDDEN
    with pytest.raises(ChatError) as owner_role:
        await world.access.set_role(owner, "closed", "owner", ADMIN)
    assert owner_role.value.code == errors.INVALID_PAYLOAD


async def test_a_direct_message_room_admits_exactly_its_pair() -> None:
    world = World()
    alice, bob, eve = await world.user("alice"), await world.user("bob"), await world.user("eve")
    direct = await world.access.open_dm(alice, "bob")
    assert direct.room.id == dm_room_id(bob.user_id, alice.user_id) and direct.peer.username == "bob"
    assert dm_pair(direct.room.id) == tuple(sorted((alice.user_id, bob.user_id)))
    assert [e.to for e in world.outbox.events("dm_opened")] == [user_room(bob.user_id)]
    assert (await world.access.open_dm(bob, "alice")).room.id == direct.room.id
    assert len(world.outbox.events("dm_opened")) == 1
    await world.access.admit(bob, direct.room.id, direct.room)
    assert await world.refused(eve, direct.room.id) == errors.FORBIDDEN
    assert await world.refused(alice, "dm:made:up") == errors.FORBIDDEN
    with pytest.raises(ChatError) as reserved:
        await world.access.create_room(alice, "dm:mine", public=True)
    assert reserved.value.code == errors.FORBIDDEN
    with pytest.raises(ChatError) as alone:
        await world.access.open_dm(alice, "alice")
    assert alone.value.code == errors.INVALID_PAYLOAD
    assert [d.peer.username for d in await world.access.direct_rooms(alice)] == ["bob"]


async def test_deleted_users_cannot_be_invited_or_messaged() -> None:
    world = World()
    alice, bob = await world.user("alice"), await world.user("bob")
    await world.access.open_dm(alice, "bob")
    await world.accounts.delete_account(bob.user_id)
    assert await world.access.direct_rooms(alice) == []
    with pytest.raises(ChatError) as gone:
        await world.access.open_dm(alice, "bob")
    assert gone.value.code == errors.NOT_FOUND and gone.value.field == "user"
