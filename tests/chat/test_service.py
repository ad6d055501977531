"""The chat core on its own: memory backends and a recording outbox, no socket, no server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatio import errors
from chatio.accounts.identity import Identity
from chatio.chat.service import ChatService
from chatio.config import Settings
from chatio.errors import ChatError
from chatio.presence import MemoryPresence
from chatio.ratelimit import TokenBucketLimiter
from chatio.store import Draft, Message, Unavailable
from chatio.store.memory import MemoryStore
from tests.chat.recording import RecordingOutbox

pytestmark = pytest.mark.unit

ALICE = Identity("u-alice", "alice")
BOB = Identity("u-bob", "bob")


class Core:
    def __init__(self, settings: Settings, store: MemoryStore | None = None) -> None:
        self.outbox = RecordingOutbox()
        self.store = store or MemoryStore()
        self.chat = ChatService(
            settings,
            self.store,
            MemoryPresence("t"),
            TokenBucketLimiter(settings.rate_limit_per_minute),
            self.outbox,
        )

    async def connected(self, sid: str, identity: Identity, *rooms: str) -> str:
        await self.chat.connect(sid, identity)
        for room in rooms:
            await self.chat.join(sid, room)
        return sid


@pytest.fixture
async def core() -> AsyncIterator[Core]:
    made = Core(Settings(pod_name="t"))
    yield made
    made.chat.close()


def _error(exc: pytest.ExceptionInfo[ChatError]) -> str:
    return exc.value.code


async def test_a_join_creates_the_room_and_tells_the_others(core: Core) -> None:
    await core.connected("a1", ALICE, "lobby")
    joined = await core.chat.join(await core.connected("b1", BOB), "lobby")
    assert joined.room.id == "lobby" and joined.room.public
    assert sorted(member.user for member in joined.members) == ["alice", "bob"]
    assert [(e.data, e.to, e.skip) for e in core.outbox.events("user_joined")] == [
        ({"room": "lobby", "user": "alice", "displayName": "alice"}, "lobby", "a1"),
        ({"room": "lobby", "user": "bob", "displayName": "bob"}, "lobby", "b1"),
    ]
    assert core.outbox.rooms["lobby"] == {"a1", "b1"}


async def test_a_second_tab_of_a_user_is_not_a_new_member(core: Core) -> None:
    await core.connected("a1", ALICE, "lobby")
    core.outbox.clear()
    await core.connected("a2", ALICE, "lobby")
    assert core.outbox.events("user_joined") == []
    await core.chat.disconnect("a2")
    assert core.outbox.events("user_left") == [] and core.outbox.events("presence") == []


async def test_a_message_is_stored_in_seq_order_and_sent_to_the_others(core: Core) -> None:
    sid = await core.connected("a1", ALICE, "lobby")
    first = await core.chat.send(sid, "lobby", "hello", "c1")
    second = await core.chat.send(sid, "lobby", "again")
    assert (first.seq, second.seq) == (1, 2)
    [sent, _] = core.outbox.events("message")
    assert sent.to == "lobby" and sent.skip == "a1"
    assert sent.data["text"] == "hello" and sent.data["seq"] == 1 and sent.data["clientMsgId"] == "c1"
    assert sent.data["user"] == "alice" and sent.data["userId"] == "u-alice"


async def test_only_members_send_type_or_read(core: Core) -> None:
    sid = await core.connected("a1", ALICE)
    with pytest.raises(ChatError) as refused:
        await core.chat.send(sid, "lobby", "hi")
    assert _error(refused) == errors.NOT_IN_ROOM and refused.value.field == "room"
    with pytest.raises(ChatError, match="join room"):
        await core.chat.set_typing(sid, "lobby", True)
    with pytest.raises(ChatError, match="join room"):
        await core.chat.history(sid, "lobby", before=None, after=None, limit=None)


async def test_sending_stops_typing(core: Core) -> None:
    sid = await core.connected("a1", ALICE, "lobby")
    await core.chat.set_typing(sid, "lobby", True)
    await core.chat.set_typing(sid, "lobby", True)  # no change: no second event
    await core.chat.send(sid, "lobby", "done")
    assert [e.data["typing"] for e in core.outbox.events("typing")] == [True, False]


async def test_leaving_and_disconnecting_tell_the_room() -> None:
    core = Core(Settings(pod_name="t"))
    sid = await core.connected("a1", ALICE, "one", "two")
    await core.chat.set_typing(sid, "one", True)
    await core.chat.leave(sid, "one")
    assert [e.data for e in core.outbox.events("typing")][-1] == {
        "room": "one",
        "user": "alice",
        "displayName": "alice",
        "typing": False,
    }
    await core.chat.disconnect(sid)
    assert [e.data["room"] for e in core.outbox.events("user_left")] == ["one", "two"]
    [offline] = core.outbox.events("presence")
    assert offline.data == {"user": "alice", "displayName": "alice", "status": "offline"} and offline.to == [
        "two"
    ]
    assert core.chat.connection_count == 0 and core.chat.local_room_count == 0
    with pytest.raises(ChatError) as refused:
        await core.chat.leave(await core.connected("a2", ALICE), "one")
    assert _error(refused) == errors.NOT_IN_ROOM
    core.chat.close()


async def test_the_message_rate_is_limited_per_user() -> None:
    core = Core(Settings(pod_name="t", rate_limit_per_minute=2))
    sid = await core.connected("a1", ALICE, "lobby")
    await core.chat.send(sid, "lobby", "1")
    await core.chat.send(sid, "lobby", "2")
    with pytest.raises(ChatError) as refused:
        await core.chat.send(sid, "lobby", "3")
    assert _error(refused) == errors.RATE_LIMITED
    assert 0 < refused.value.extra["retryAfterMs"] <= 30_001
    core.chat.close()


async def test_rooms_and_connections_are_bounded() -> None:
    core = Core(Settings(pod_name="t", room_max_members=1, rooms_per_connection=1))
    await core.connected("a1", ALICE, "small")
    with pytest.raises(ChatError) as full:
        await core.chat.join(await core.connected("b1", BOB), "small")
    assert _error(full) == errors.ROOM_FULL
    await core.chat.join(await core.connected("a2", ALICE), "small")  # alice's second tab: no new member
    with pytest.raises(ChatError) as many:
        await core.chat.join("a1", "other")
    assert _error(many) == errors.TOO_MANY_ROOMS
    core.chat.close()


async def test_missing_rooms_are_refused_without_auto_create() -> None:
    core = Core(Settings(pod_name="t", auto_create_rooms=False))
    with pytest.raises(ChatError) as refused:
        await core.chat.join(await core.connected("a1", ALICE), "nowhere")
    assert _error(refused) == errors.ROOM_NOT_FOUND and refused.value.field == "room"
    core.chat.close()


async def test_catch_up_returns_what_came_after_or_resets() -> None:
    core = Core(Settings(pod_name="t", catchup_max=3, history_page_size=2))
    sid = await core.connected("a1", ALICE, "lobby")
    for n in range(5):
        await core.chat.send(sid, "lobby", f"m{n}")
    bob = await core.connected("b1", BOB)
    caught = await core.chat.join(bob, "lobby", since_seq=3)
    assert [m.seq for m in caught.history] == [4, 5] and not caught.reset
    assert (await core.chat.join(bob, "lobby", since_seq=5)).history == []
    too_far_behind = await core.chat.join(bob, "lobby", since_seq=1)
    assert too_far_behind.reset and [m.seq for m in too_far_behind.history] == [4, 5]
    from_the_future = await core.chat.join(bob, "lobby", since_seq=9)
    assert from_the_future.reset and [m.seq for m in from_the_future.history] == [4, 5]
    core.chat.close()


async def test_a_history_page_is_capped(core: Core) -> None:
    with pytest.raises(ChatError) as refused:
        await core.chat.read_page("lobby", before=None, after=None, limit=10_000)
    assert _error(refused) == errors.INVALID_PAYLOAD and refused.value.field == "limit"


class BrokenStore(MemoryStore):
    """A fault injected into the real memory store: appends fail as a lost database would."""

    async def append(self, draft: Draft) -> Message:
        raise Unavailable("injected")


async def test_a_store_outage_is_unavailable_and_nothing_is_broadcast() -> None:
    core = Core(Settings(pod_name="t"), store=BrokenStore())
    sid = await core.connected("a1", ALICE, "lobby")
    with pytest.raises(ChatError) as refused:
        await core.chat.send(sid, "lobby", "lost?")
    assert _error(refused) == errors.UNAVAILABLE
    assert core.outbox.events("message") == []
    core.chat.close()


CAROL = Identity("u-carol", "carol")
ROOT = Identity("u-root", "root", guest=False, admin=True)


async def test_only_the_author_edits_and_the_others_hear_of_it(core: Core) -> None:
    alice = await core.connected("a1", ALICE, "lobby")  # alice made the room: she owns it
    bob = await core.connected("b1", BOB, "lobby")
    message = await core.chat.send(bob, "lobby", "teh")
    with pytest.raises(ChatError) as refused:
        await core.chat.edit(alice, "lobby", message.id, "hacked")
    assert _error(refused) == errors.FORBIDDEN and refused.value.field == "id"
    edited = await core.chat.edit(bob, "lobby", message.id, "the")
    assert edited.text == "the" and edited.edited_at is not None and edited.change == 1
    [event] = core.outbox.events("message_updated")
    assert event.data["text"] == "the" and event.data["editedAt"] == edited.edited_at and event.skip == bob
    with pytest.raises(ChatError) as missing:
        await core.chat.edit(bob, "lobby", "0" * 24, "x")
    assert _error(missing) == errors.NOT_FOUND
    with pytest.raises(ChatError) as outside:
        await core.chat.edit(await core.connected("c1", CAROL), "lobby", message.id, "x")
    assert _error(outside) == errors.NOT_IN_ROOM


async def test_authors_room_moderators_and_administrators_delete(core: Core) -> None:
    alice = await core.connected("a1", ALICE, "lobby")
    bob = await core.connected("b1", BOB, "lobby")
    carol = await core.connected("c1", CAROL, "lobby")
    first, second, third = [await core.chat.send(bob, "lobby", text) for text in ("1", "2", "3")]
    with pytest.raises(ChatError) as refused:
        await core.chat.delete(carol, "lobby", first.id)
    assert _error(refused) == errors.FORBIDDEN
    own = await core.chat.delete(bob, "lobby", first.id)
    assert own.deleted and own.text == "" and own.seq == first.seq
    assert (await core.chat.delete(alice, "lobby", second.id)).deleted  # the room's owner
    root = await core.connected("r1", ROOT)  # an administrator, not even in the room
    assert (await core.chat.delete(root, "lobby", third.id)).deleted
    tombstones = [event.data for event in core.outbox.events("message_deleted")]
    assert [(t["seq"], t["deleted"], t["text"]) for t in tombstones] == [
        (1, True, ""),
        (2, True, ""),
        (3, True, ""),
    ]
    assert (await core.chat.delete(bob, "lobby", first.id)).deleted  # again: fine, nothing new to tell
    assert len(core.outbox.events("message_deleted")) == 3
    with pytest.raises(ChatError) as gone:
        await core.chat.edit(bob, "lobby", first.id, "back")
    assert _error(gone) == errors.NOT_FOUND


async def test_a_reply_quotes_its_parent_and_outlives_it(core: Core) -> None:
    alice = await core.connected("a1", ALICE, "lobby")
    bob = await core.connected("b1", BOB, "lobby")
    parent = await core.chat.send(alice, "lobby", "x" * 300)
    reply = await core.chat.send(bob, "lobby", "yes", reply_to=parent.id)
    assert reply.reply_to is not None and reply.reply_to.user == "alice" and reply.reply_to.seq == parent.seq
    assert reply.reply_to.excerpt is not None and len(reply.reply_to.excerpt) == 100
    assert core.outbox.events("message")[-1].data["replyTo"]["excerpt"] == reply.reply_to.excerpt
    [counted] = (await core.chat.history(alice, "lobby", before=2, after=None, limit=1)).messages
    assert counted.reply_count == 1
    await core.chat.delete(alice, "lobby", parent.id)
    [_, stored] = (await core.chat.history(bob, "lobby", before=None, after=None, limit=2)).messages
    assert stored.reply_to is not None and stored.reply_to.excerpt is None and stored.reply_to.id == parent.id
    with pytest.raises(ChatError) as missing:
        await core.chat.send(bob, "lobby", "to nothing", reply_to="0" * 24)
    assert _error(missing) == errors.NOT_FOUND and missing.value.field == "replyTo"


async def test_reactions_are_per_user_and_told_once(core: Core) -> None:
    alice = await core.connected("a1", ALICE, "lobby")
    bob = await core.connected("b1", BOB, "lobby")
    message = await core.chat.send(alice, "lobby", "ship it")
    await core.chat.react(bob, "lobby", message.id, "🚀", add=True)
    again = await core.chat.react(bob, "lobby", message.id, "🚀", add=True)
    assert again.reactions == (("🚀", ("bob",)),)
    [event] = core.outbox.events("reaction")
    assert event.data["reactions"] == [{"emoji": "🚀", "count": 1, "users": ["bob"]}] and event.data["added"]
    taken_back = await core.chat.react(bob, "lobby", message.id, "🚀", add=False)
    assert taken_back.reactions == () and len(core.outbox.events("reaction")) == 2
    with pytest.raises(ChatError) as outside:
        await core.chat.react(await core.connected("c1", CAROL), "lobby", message.id, "🚀", add=True)
    assert _error(outside) == errors.NOT_IN_ROOM


async def test_catch_up_brings_changes_to_older_messages() -> None:
    core = Core(Settings(pod_name="t", catchup_max=3))
    alice = await core.connected("a1", ALICE, "lobby")
    bob = await core.connected("b1", BOB, "lobby")
    sent = [await core.chat.send(alice, "lobby", f"m{n}") for n in range(4)]
    seen = await core.chat.join(bob, "lobby", since_seq=4)
    assert seen.changes == [] and seen.change == 0
    await core.chat.edit(alice, "lobby", sent[0].id, "m0 edited")
    await core.chat.react(alice, "lobby", sent[1].id, "👍", add=True)
    await core.chat.delete(alice, "lobby", sent[2].id)
    later = await core.chat.send(alice, "lobby", "m4")
    back = await core.chat.join(bob, "lobby", since_seq=4, since_change=0)
    assert [m.seq for m in back.history] == [later.seq] and not back.reset
    assert [(m.seq, m.text, m.deleted) for m in back.changes] == [
        (1, "m0 edited", False),
        (2, "m1", False),
        (3, "", True),
    ]
    assert back.changes[1].reactions == (("👍", ("alice",)),) and back.change == 3
    await core.chat.edit(alice, "lobby", sent[3].id, "m3 edited")
    overflowing = await core.chat.join(bob, "lobby", since_seq=5, since_change=0)
    assert overflowing.reset and overflowing.changes == []
    core.chat.close()


async def test_catch_up_resets_where_the_bounded_memory_store_dropped_messages() -> None:
    core = Core(Settings(pod_name="t"), store=MemoryStore(max_messages_per_room=3))
    alice = await core.connected("a1", ALICE, "lobby")
    for n in range(5):
        await core.chat.send(alice, "lobby", f"m{n}")
    page = await core.chat.history(alice, "lobby", before=None, after=None, limit=10)
    assert [m.seq for m in page.messages] == [3, 4, 5] and not page.has_more
    behind = await core.chat.join(await core.connected("b1", BOB), "lobby", since_seq=1)
    assert behind.reset and [m.seq for m in behind.history] == [3, 4, 5]
    assert not (await core.chat.join("b1", "lobby", since_seq=3)).reset
    assert (await core.store.counts()).messages == 3
    core.chat.close()


async def test_read_marks_rise_across_devices_and_reach_the_other_devices(core: Core) -> None:
    alice = await core.connected("a1", ALICE, "lobby")
    for n in range(3):
        await core.chat.send(alice, "lobby", f"m{n}")
    bob_phone = await core.connected("b1", BOB)
    joined = await core.chat.join(bob_phone, "lobby")
    assert joined.reading is not None and (joined.reading.last_read, joined.reading.unread) == (3, 0)
    for n in range(4):
        await core.chat.send(alice, "lobby", f"later {n}")
    bob_laptop = await core.connected("b2", BOB)
    later = await core.chat.join(bob_laptop, "lobby")
    assert later.reading is not None and later.reading.unread == 4 and later.reading.last_message is not None
    assert later.reading.last_message.text == "later 3"
    read = await core.chat.mark_read(bob_phone, "lobby", 5)
    assert (read.last_read, read.unread) == (5, 2)
    [told] = core.outbox.events("read")
    assert told.data == {"room": "lobby", "user": "bob", "seq": 5}
    assert told.to == ["@user:u-bob", "lobby"] and told.skip == bob_phone
    behind = await core.chat.mark_read(bob_laptop, "lobby", 4)  # a device that is behind: no step back
    assert behind.last_read == 5 and len(core.outbox.events("read")) == 1
    assert (await core.chat.mark_read(bob_laptop, "lobby", 99)).last_read == 7  # capped at the newest
    [(room, reading)] = await core.chat.room_list(BOB, [])
    assert room.id == "lobby" and (reading.last_read, reading.unread) == (7, 0)


async def test_a_room_may_keep_receipts_among_each_users_devices(core: Core) -> None:
    alice = await core.connected("a1", ALICE, "lobby")
    bob = await core.connected("b1", BOB, "lobby")
    await core.chat.send(alice, "lobby", "hi")
    with pytest.raises(ChatError) as refused:
        await core.chat.set_room_options(bob, "lobby", receipts=False)
    assert _error(refused) == errors.FORBIDDEN
    room = await core.chat.set_room_options(alice, "lobby", receipts=False)
    assert not room.receipts and core.outbox.events("room_updated")[0].data["receipts"] is False
    await core.chat.mark_read(bob, "lobby", 1)
    [told] = core.outbox.events("read")
    assert told.to == ["@user:u-bob"]
