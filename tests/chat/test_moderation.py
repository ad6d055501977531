"""Moderation decided by the domain alone: memory stores, a recording outbox, one process's signals."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatio import errors
from chatio.accounts.identity import Identity
from chatio.chat.access import RoomAccess
from chatio.chat.moderation import LocalSignals, Moderation
from chatio.chat.service import ChatService
from chatio.config import Settings
from chatio.errors import ChatError
from chatio.presence import MemoryPresence
from chatio.ratelimit import TokenBucketLimiter
from chatio.store.access import ADMIN
from chatio.store.access_memory import MemoryAccessStore
from chatio.store.accounts_memory import MemoryAccountStore
from chatio.store.memory import MemoryStore
from tests.chat.recording import RecordingOutbox

pytestmark = pytest.mark.unit


class World:
    def __init__(self) -> None:
        settings = Settings(pod_name="t")
        self.store = MemoryStore()
        self.acl = MemoryAccessStore()
        self.accounts = MemoryAccountStore()
        self.outbox = RecordingOutbox()
        self.access = RoomAccess(self.store, self.acl, self.accounts, self.outbox)
        self.chat = ChatService(
            settings,
            self.store,
            MemoryPresence("t"),
            TokenBucketLimiter(settings.rate_limit_per_minute),
            self.outbox,
            self.access,
        )
        signals = LocalSignals()
        signals.handlers.append(self.chat.apply)
        self.chat.changes.audit = self.acl.record
        self.moderation = Moderation(self.access, self.accounts, signals, self.outbox)

    async def user(self, name: str, *, admin: bool = False) -> Identity:
        user = await self.store.create_user(name, name)
        await self.accounts.create_account(user.id, "x", admin=admin)
        return Identity(user.id, name, guest=False, admin=admin)

    async def socket(self, sid: str, identity: Identity, room: str) -> str:
        await self.chat.connect(sid, identity)
        await self.chat.join(sid, room)
        return sid

    async def refused(self, actor: Identity, action: str, user: str, seconds: int | None = None) -> str:
        with pytest.raises(ChatError) as refused:
            await self.moderation.act(actor, action, "club", user, reason="", seconds=seconds)
        return refused.value.code


@pytest.fixture
async def world() -> AsyncIterator[World]:
    made = World()
    yield made
    made.chat.close()


async def test_a_ban_removes_the_user_now_and_keeps_them_out(world: World) -> None:
    owner, troll = await world.user("owner"), await world.user("troll")
    await world.access.create_room(owner, "club", public=True)
    phone, laptop = await world.socket("t1", troll, "club"), await world.socket("t2", troll, "club")
    entry = await world.moderation.act(owner, "ban", "club", "troll", reason="spam", seconds=None)
    assert (entry.action, entry.actor, entry.target, entry.reason, entry.until) == (
        "ban",
        "owner",
        "troll",
        "spam",
        None,
    )
    assert (
        "club" not in world.chat.connection(phone).rooms and "club" not in world.chat.connection(laptop).rooms
    )
    [told] = world.outbox.events("moderated")
    assert told.data == {
        "room": "club",
        "action": "ban",
        "user": "troll",
        "by": "owner",
        "reason": "spam",
        "until": None,
    }
    assert told.to == ["club", f"@user:{troll.user_id}"]
    with pytest.raises(ChatError) as banned:
        await world.chat.join(phone, "club")
    assert banned.value.code == errors.BANNED
    [ban] = await world.moderation.restricted(owner, "club", "ban", 10)
    assert (ban.user, ban.user_id, ban.by, ban.reason, ban.until, ban.at) == (
        "troll",
        troll.user_id,
        "owner",
        "spam",
        None,
        entry.at,
    )
    await world.moderation.act(owner, "unban", "club", "troll", reason="", seconds=None)
    assert await world.moderation.restricted(owner, "club", "ban", 10) == []
    await world.chat.join(phone, "club")
    assert [e.action for e in await world.moderation.audit(owner, "club", 10)] == ["unban", "ban"]


async def test_a_mute_stops_sending_for_its_duration(world: World) -> None:
    owner, chatty = await world.user("owner"), await world.user("chatty")
    await world.access.create_room(owner, "club", public=True)
    sid = await world.socket("c1", chatty, "club")
    assert await world.refused(owner, "mute", "chatty") == errors.INVALID_PAYLOAD  # a mute needs seconds
    entry = await world.moderation.act(owner, "mute", "club", "chatty", reason="calm down", seconds=60)
    assert entry.until is not None and entry.until > entry.at
    with pytest.raises(ChatError) as muted:
        await world.chat.send(sid, "club", "hello?")
    assert muted.value.code == errors.MUTED and muted.value.extra["untilMs"] == entry.until
    await world.chat.connect("c2", chatty)
    await world.chat.join("c2", "club")
    with pytest.raises(ChatError):  # a socket joining later reads the mute from the store
        await world.chat.send("c2", "club", "me too")
    [mute] = await world.moderation.restricted(owner, "club", "mute", 10)
    assert (mute.user, mute.reason, mute.until) == ("chatty", "calm down", entry.until)
    await world.moderation.act(owner, "unmute", "club", "chatty", reason="", seconds=None)
    assert await world.moderation.restricted(owner, "club", "mute", 10) == []
    await world.chat.send(sid, "club", "thanks")


async def test_a_kick_leaves_now_but_may_come_back(world: World) -> None:
    owner, guest = await world.user("owner"), await world.user("guest")
    await world.access.create_room(owner, "club", public=True)
    sid = await world.socket("g1", guest, "club")
    await world.moderation.act(owner, "kick", "club", "guest", reason="", seconds=None)
    assert world.chat.connection(sid).rooms == set() and world.outbox.events("user_left")
    await world.chat.join(sid, "club")


async def test_who_may_moderate_whom(world: World) -> None:
    owner, admin, member = await world.user("owner"), await world.user("admin"), await world.user("member")
    await world.user("other")
    root = await world.user("root", admin=True)
    await world.access.create_room(owner, "club", public=True)
    await world.access.set_role(owner, "club", "admin", ADMIN)
    await world.access.set_role(owner, "club", "other", ADMIN)
    assert await world.refused(member, "ban", "admin") == errors.FORBIDDEN  # a member banning an admin
    assert await world.refused(admin, "ban", "other") == errors.FORBIDDEN  # an admin, another admin
    assert await world.refused(admin, "kick", "owner") == errors.FORBIDDEN
    assert await world.refused(admin, "ban", "root") == errors.FORBIDDEN  # a server administrator
    assert await world.refused(admin, "ban", "admin") == errors.INVALID_PAYLOAD  # oneself
    assert await world.refused(admin, "ban", "nobody") == errors.NOT_FOUND
    await world.moderation.act(admin, "mute", "club", "member", reason="", seconds=5)
    await world.moderation.act(owner, "kick", "club", "other", reason="", seconds=None)
    await world.moderation.act(root, "ban", "club", "admin", reason="server rules", seconds=3600)
    with pytest.raises(ChatError) as outsider:
        await world.moderation.audit(member, "club", 10)
    assert outsider.value.code == errors.FORBIDDEN
    with pytest.raises(ChatError) as outsider:
        await world.moderation.restricted(member, "club", "ban", 10)
    assert outsider.value.code == errors.FORBIDDEN
    with pytest.raises(ChatError) as unknown:
        await world.moderation.restricted(owner, "nowhere", "ban", 10)
    assert unknown.value.code == errors.ROOM_NOT_FOUND
    # The administrator's ban, seen by the owner and by the banned admin's peers alike.
    assert [b.by for b in await world.moderation.restricted(owner, "club", "ban", 10)] == ["root"]
    with pytest.raises(ChatError):
        await world.moderation.audit(owner, None, 10)  # every room's trail: server administrators only
    assert [e.action for e in await world.moderation.audit(root, None, 10)] == ["ban", "kick", "mute"]


async def test_removing_someone_elses_message_is_audited(world: World) -> None:
    owner, member = await world.user("owner"), await world.user("member")
    await world.access.create_room(owner, "club", public=True)
    sid = await world.socket("m1", member, "club")
    message = await world.chat.send(sid, "club", "rude")
    await world.socket("o1", owner, "club")
    await world.chat.delete("o1", "club", message.id)
    [entry] = await world.moderation.audit(owner, "club", 10)
    assert (entry.action, entry.target, entry.message_id) == ("delete_message", "member", message.id)
