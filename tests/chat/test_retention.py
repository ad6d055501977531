"""The retention sweeper on the memory store: old messages go, the newest stays, catch-up resets."""

from __future__ import annotations

import pytest

from chatio.accounts.identity import Identity
from chatio.chat.retention import DAY_MS, ROOMS_PER_PASS, RetentionSweeper
from chatio.chat.service import ChatService
from chatio.config import Settings
from chatio.presence import MemoryPresence
from chatio.ratelimit import TokenBucketLimiter
from chatio.store import Draft
from chatio.store.memory import MemoryStore
from tests.chat.recording import RecordingOutbox

pytestmark = pytest.mark.unit


async def fill(store: MemoryStore, room: str, count: int) -> None:
    for n in range(count):
        await store.append(Draft(room, "u-a", "alice", f"{room} {n}"))


async def test_each_room_keeps_its_own_retention_and_its_newest_message() -> None:
    store = MemoryStore()
    for room_id in ("default", "short", "forever"):
        await store.create_room(room_id, room_id, public=True, owner=None)
        await fill(store, room_id, 3)
    await store.set_retention("short", 1)
    await store.set_retention("forever", 0)
    sweeper = RetentionSweeper(store, default_days=30, interval_seconds=60)
    in_two_days = (await store.page("short", limit=1)).messages[0].ts + 2 * DAY_MS
    assert await sweeper.sweep(in_two_days) == 2
    assert [m.seq for m in (await store.page("short", limit=10)).messages] == [3]
    assert len((await store.page("default", limit=10)).messages) == 3
    assert await sweeper.sweep(in_two_days + 40 * DAY_MS) == 2  # the default's 30 days are over too
    assert len((await store.page("forever", limit=10)).messages) == 3


async def test_a_pass_visits_a_bounded_number_of_rooms_and_goes_on_from_there() -> None:
    store = MemoryStore()
    for n in range(ROOMS_PER_PASS + 3):
        await fill(store, f"r{n:04d}", 2)
    sweeper = RetentionSweeper(store, default_days=1, interval_seconds=60)
    later = (await store.page("r0000", limit=1)).messages[0].ts + 2 * DAY_MS
    assert await sweeper.sweep(later) == ROOMS_PER_PASS
    assert await sweeper.sweep(later) == 3
    assert await sweeper.sweep(later) == 0  # started over: nothing left to remove


async def test_catch_up_across_removed_messages_says_reset() -> None:
    settings = Settings(pod_name="t")
    store = MemoryStore()
    chat = ChatService(settings, store, MemoryPresence("t"), TokenBucketLimiter(60), RecordingOutbox())
    await chat.connect("a1", Identity("u-a", "alice"))
    await chat.join("a1", "lobby")
    for n in range(4):
        await chat.send("a1", "lobby", f"m{n}")
    newest = (await store.page("lobby", limit=1)).messages[0]
    await RetentionSweeper(store, default_days=1, interval_seconds=60).sweep(newest.ts + 2 * DAY_MS)
    back = await chat.join("a1", "lobby", since_seq=1)
    assert back.reset and [m.seq for m in back.history] == [4]
    chat.close()
