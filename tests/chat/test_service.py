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
        ({"room": "lobby", "user": "alice"}, "lobby", "a1"),
        ({"room": "lobby", "user": "bob"}, "lobby", "b1"),
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
        "typing": False,
    }
    await core.chat.disconnect(sid)
    assert [e.data["room"] for e in core.outbox.events("user_left")] == ["one", "two"]
    [offline] = core.outbox.events("presence")
    assert offline.data == {"user": "alice", "status": "offline"} and offline.to == ["two"]
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
