"""MongoStore beyond the shared contract: indexes, seqs across stores and processes, group commit, outages,
durability. Every test talks to a real ``mongod``; fail points (``configureFailPoint``) inject faults."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from chatio.config import ConfigError, load_settings
from chatio.store import Draft, Message, Unavailable
from chatio.store.mongo import MongoStore, search_pipeline
from chatio.store.ngrams import plan
from tests.services import MongodFactory
from tools.devservices import MongodProcess, free_port

pytestmark = pytest.mark.mongo

APPENDER = Path(__file__).resolve().parent / "mongo_appender.py"


def draft(n: int = 0, *, room: str = "r1", user: str = "alice", cid: str | None = None) -> Draft:
    return Draft(room=room, user_id=f"id-{user}", user=user, text=f"message {n}", client_msg_id=cid)


@asynccontextmanager
async def opened(uri: str, database: str, **options: Any) -> AsyncIterator[MongoStore]:
    store = MongoStore(uri, database, **options)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def stored_seqs(admin: MongoClient[dict[str, Any]], database: str, room: str = "r1") -> list[int]:
    cursor = admin[database].messages.find({"room": room}, {"seq": 1}).sort("seq", 1)
    return [document["seq"] for document in cursor]


class InsertSizes(CommandListener):
    """Observes (never alters) the insert commands the driver sends for ``messages``."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name == "insert" and event.command.get("insert") == "messages":
            self.sizes.append(len(event.command["documents"]))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


def fail_point(process: MongodProcess, mode: Any, **data: Any) -> None:
    """Make the next ``insert`` commands from chatio's client fail or stall, as ``data`` says."""
    with process.client() as client:
        data = {"failCommands": ["insert"], "appName": "chatio", **data}
        client.admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": data})


# --- setup ----------------------------------------------------------------------------------------------


async def test_start_creates_the_indexes_and_may_run_twice(
    mongodb_uri: str, mongodb_database: str, mongodb_admin: MongoClient[dict[str, Any]]
) -> None:
    async with opened(mongodb_uri, mongodb_database) as store:
        await store.start()
    db = mongodb_admin[mongodb_database]
    messages = {index["name"]: index for index in db.messages.list_indexes()}
    assert messages["room_seq"]["key"] == {"room": 1, "seq": 1} and messages["room_seq"]["unique"]
    assert messages["room_ts"]["key"] == {"room": 1, "ts": 1}
    assert messages["user_id"]["key"] == {"user_id": 1}
    assert messages["grams_room"]["key"] == {"grams": 1, "room": 1} and "text" not in messages
    client_ids = messages["room_user_client_msg_id"]
    assert client_ids["unique"] and client_ids["partialFilterExpression"] == {
        "client_msg_id": {"$exists": True}
    }
    users = {index["name"]: index for index in db.users.list_indexes()}
    assert users["username"]["unique"] and users["online"]["key"] == {"online": 1}
    rooms = {index["name"]: index for index in db.rooms.list_indexes()}
    assert set(rooms) == {"_id_", "name", "public_id"}


async def test_index_creation_at_start_may_take_longer_than_a_request(mongod_factory: MongodFactory) -> None:
    mongod = mongod_factory(test_commands=True)
    # A loaded mongod: the first createIndexes answers after 2.5 s, past the 1 s a request may take.
    fail_point(mongod, {"times": 1}, failCommands=["createIndexes"], blockConnection=True, blockTimeMS=2500)
    store = MongoStore(mongod.uri, "chat", timeout_seconds=1.0)
    try:
        started = time.monotonic()
        await store.start()
        assert time.monotonic() - started >= 2.0  # it did wait for the slow answer
    finally:
        await store.close()


# --- seq ------------------------------------------------------------------------------------------------


async def test_two_stores_on_one_room_share_a_gap_free_seq(
    mongodb_uri: str, mongodb_database: str, mongodb_admin: MongoClient[dict[str, Any]]
) -> None:
    async with opened(mongodb_uri, mongodb_database) as one, opened(mongodb_uri, mongodb_database) as two:
        messages = await asyncio.gather(*((one, two)[n % 2].append(draft(n)) for n in range(200)))
        conflicts = one.writer_stats.seq_conflicts + two.writer_stats.seq_conflicts
    assert sorted(message.seq for message in messages) == list(range(1, 201))
    assert stored_seqs(mongodb_admin, mongodb_database) == list(range(1, 201))
    assert conflicts > 0  # the stores did compete for seqs


async def test_two_stores_on_several_rooms_keep_each_room_gap_free(
    mongodb_uri: str, mongodb_database: str, mongodb_admin: MongoClient[dict[str, Any]]
) -> None:
    rooms = ["a", "b", "c", "d"]
    async with opened(mongodb_uri, mongodb_database) as one, opened(mongodb_uri, mongodb_database) as two:
        for _ in range(3):  # in waves, so that rooms known to be contended get inserts of their own
            await asyncio.gather(
                *((one, two)[n // 4 % 2].append(draft(n, room=rooms[n % 4])) for n in range(400))
            )
        conflicts = one.writer_stats.seq_conflicts + two.writer_stats.seq_conflicts
    for room in rooms:
        assert stored_seqs(mongodb_admin, mongodb_database, room) == list(range(1, 301))
    assert conflicts > 0


async def test_two_processes_on_one_room_share_a_gap_free_seq(
    mongodb_uri: str, mongodb_database: str, mongodb_admin: MongoClient[dict[str, Any]]
) -> None:
    appenders = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, str(APPENDER), mongodb_uri, mongodb_database, "r1", "1500"),
            *("--concurrency", "30", "--user", user),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for user in ("p1", "p2")
    ]
    try:
        for appender in appenders:
            assert appender.stdout is not None
            assert await asyncio.wait_for(appender.stdout.readline(), 20) == b"ready\n"
        start = time.time() + 0.5  # one wall-clock instant for both, so they really write at once
        for appender in appenders:
            assert appender.stdin is not None
            appender.stdin.write(f"go {start}\n".encode())
            await appender.stdin.drain()
        outputs = await asyncio.wait_for(asyncio.gather(*(a.communicate() for a in appenders)), 60)
    finally:
        for appender in appenders:
            if appender.returncode is None:
                appender.kill()
                await appender.wait()
    assert [appender.returncode for appender in appenders] == [0, 0]
    acked = [[int(line) for line in stdout.split()] for stdout, _stderr in outputs]
    assert len(acked[0]) == len(acked[1]) == 1500
    assert sorted(acked[0] + acked[1]) == list(range(1, 3001))
    assert stored_seqs(mongodb_admin, mongodb_database) == list(range(1, 3001))
    # Interleaved, not one after the other: the processes really contended for the room.
    assert min(acked[0]) < max(acked[1]) and min(acked[1]) < max(acked[0])


async def test_failed_inserts_leave_no_gap_and_a_retry_is_safe(mongod_factory: MongodFactory) -> None:
    mongod = mongod_factory(test_commands=True)
    async with opened(mongod.uri, "chat", timeout_seconds=1.0) as store:
        assert [(await store.append(draft(n))).seq for n in range(2)] == [1, 2]
        fail_point(mongod, {"times": 1}, errorCode=8)  # UnknownError: nothing written, not retryable
        with pytest.raises(Unavailable):
            await store.append(draft(2))
        assert (await store.append(draft(3))).seq == 3
        # Written, but the write concern failed: the caller must not hear "stored"...
        fail_point(mongod, {"times": 1}, writeConcernError={"code": 64, "errmsg": "injected"})
        with pytest.raises(Unavailable):
            await store.append(draft(4, cid="unsure"))
        # ...and its retry finds the message that did land, instead of storing it twice.
        retried = await store.append(draft(4, cid="unsure"))
        assert retried.seq == 4
        assert (await store.append(draft(5))).seq == 5
        page = await store.page("r1", limit=10)
    assert [message.text for message in page.messages] == [f"message {n}" for n in (0, 1, 3, 4, 5)]


async def test_the_writer_survives_a_defect_and_says_so(
    mongodb_uri: str, mongodb_database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with opened(mongodb_uri, mongodb_database) as store:
        writer = store._writer
        documents = writer._documents

        def broken_once(batch: Any) -> Any:
            monkeypatch.setattr(writer, "_documents", documents)
            raise RuntimeError("injected defect")

        monkeypatch.setattr(writer, "_documents", broken_once)
        with pytest.raises(Unavailable, match="injected defect"):
            await store.append(draft(0))
        assert (await store.append(draft(1))).seq == 1
    assert "group commit failed unexpectedly" in caplog.text


# --- group commit and idempotency -----------------------------------------------------------------------


async def test_concurrent_appends_share_few_inserts(mongodb_uri: str, mongodb_database: str) -> None:
    inserts = InsertSizes()
    options = {"event_listeners": [inserts], "group_commit_max_batch": 64}
    async with opened(mongodb_uri, mongodb_database, **options) as store:
        rooms = ["a", "b", "c"]
        messages = await asyncio.gather(*(store.append(draft(n, room=rooms[n % 3])) for n in range(300)))
    assert sum(inserts.sizes) == 300
    assert max(inserts.sizes) == 64 and len(inserts.sizes) <= 10, inserts.sizes
    for room in rooms:
        seqs = sorted(message.seq for message in messages if message.room == room)
        assert seqs == list(range(1, 101))


async def test_sequential_appends_are_not_held_back(mongodb_uri: str, mongodb_database: str) -> None:
    async with opened(mongodb_uri, mongodb_database, group_commit_max_wait_ms=50) as store:
        started = time.monotonic()
        for n in range(10):
            await store.append(draft(n))
        elapsed = time.monotonic() - started
    # Alone, an append does not wait max_wait for company that is not coming (10 x 50 ms would be 0.5 s).
    assert elapsed < 0.25


async def test_repeats_in_one_batch_and_across_batches_are_stored_once(
    mongodb_uri: str, mongodb_database: str, mongodb_admin: MongoClient[dict[str, Any]]
) -> None:
    async with opened(mongodb_uri, mongodb_database) as store:
        earlier = await store.append(draft(0, cid="early"))
        batch = await asyncio.gather(
            store.append(draft(1, cid="a")),
            store.append(draft(2, cid="early")),  # repeats an earlier batch
            store.append(draft(3, cid="a")),  # repeats one in this batch
            store.append(draft(4, cid="b")),
            store.append(draft(5)),
        )
    first_a, repeat_early, repeat_a, b, plain = batch
    assert repeat_early == earlier and repeat_a == first_a
    assert sorted([first_a.seq, b.seq, plain.seq]) == [2, 3, 4]
    assert stored_seqs(mongodb_admin, mongodb_database) == [1, 2, 3, 4]


async def test_racing_repeats_from_two_stores_get_one_message(
    mongodb_uri: str, mongodb_database: str, mongodb_admin: MongoClient[dict[str, Any]]
) -> None:
    async with opened(mongodb_uri, mongodb_database) as one, opened(mongodb_uri, mongodb_database) as two:
        await one.append(draft(0))
        await two.append(draft(1))
        results = await asyncio.gather(
            *(store.append(draft(n, cid=f"c{n % 20}")) for n in range(100) for store in (one, two))
        )
    by_cid: dict[str | None, set[Message]] = {}
    for message in results:
        by_cid.setdefault(message.client_msg_id, set()).add(message)
    assert len(by_cid) == 20 and all(len(messages) == 1 for messages in by_cid.values())
    assert stored_seqs(mongodb_admin, mongodb_database) == list(range(1, 23))


async def test_operators_in_text_are_stored_literally(mongodb_uri: str, mongodb_database: str) -> None:
    text = '{"$gt": ""}'
    async with opened(mongodb_uri, mongodb_database) as store:
        await store.create_user("$where", "{'$ne': null}")
        message = await store.append(Draft("$room", "id-x", "$user", text, '{"$ne": 1}'))
        assert message.text == text
        assert (await store.page("$room", limit=5)).messages == [message]
        assert await store.page('{"$gt": ""}', limit=5) == (await store.page("nowhere", limit=5))
        assert await store.find_user('{"$ne": null}') is None
        user = await store.find_user("$where")
        assert user is not None and user.display_name == "{'$ne': null}"
        # A dict where a string belongs would be read as operators: refused even past the schemas.
        operator: Any = {"$ne": None}
        with pytest.raises(TypeError):
            await store.find_user(operator)
        with pytest.raises(TypeError):
            await store.page(operator, limit=5)
        with pytest.raises(TypeError):
            await store.append(Draft("$room", "id-x", "$user", operator))
        assert (await store.counts()).messages == 1


# --- outages --------------------------------------------------------------------------------------------


async def timed(operation: Callable[[], Any]) -> float:
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await operation()
    return time.monotonic() - started


async def test_mongod_down_is_unavailable_in_time_and_the_same_store_recovers(
    mongod_factory: MongodFactory,
) -> None:
    mongod = mongod_factory()
    async with opened(mongod.uri, "chat", timeout_seconds=2.0) as store:
        assert (await store.append(draft(0))).seq == 1
        mongod.stop()
        assert await timed(lambda: store.append(draft(1))) < 2.5
        assert await timed(store.ping) < 2.5
        assert await timed(lambda: store.page("r1", limit=5)) < 2.5
        mongod.start()
        await store.ping()
        assert (await store.append(draft(2))).seq == 2
        page = await store.page("r1", limit=5)
    assert [message.text for message in page.messages] == ["message 0", "message 2"]


async def test_a_stalled_insert_times_out_and_a_retry_is_safe(mongod_factory: MongodFactory) -> None:
    mongod = mongod_factory(test_commands=True)
    async with opened(mongod.uri, "chat", timeout_seconds=0.5) as store:
        await store.append(draft(0))
        fail_point(mongod, {"times": 1}, blockConnection=True, blockTimeMS=1500)
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await store.append(draft(1, cid="retry-me"))
        assert time.monotonic() - started < 0.8
        await asyncio.sleep(1.2)  # the stalled insert may still land meanwhile
        retried = await store.append(draft(1, cid="retry-me"))
        after = await store.append(draft(2))
        page = await store.page("r1", limit=10)
    assert [message.seq for message in page.messages] == [1, 2, 3]
    assert [message.text for message in page.messages] == ["message 0", "message 1", "message 2"]
    assert page.messages[1:] == [retried, after]


async def test_close_writes_what_was_accepted(
    mongodb_uri: str, mongodb_database: str, mongodb_admin: MongoClient[dict[str, Any]]
) -> None:
    store = MongoStore(mongodb_uri, mongodb_database, group_commit_max_batch=10)
    await store.start()
    appends = [asyncio.ensure_future(store.append(draft(n))) for n in range(100)]
    await asyncio.sleep(0)  # every append is queued
    await store.close()
    assert sorted(message.seq for message in await asyncio.gather(*appends)) == list(range(1, 101))
    assert stored_seqs(mongodb_admin, mongodb_database) == list(range(1, 101))
    with pytest.raises(Unavailable):
        await store.append(draft(101))


# --- durability -----------------------------------------------------------------------------------------


async def test_a_new_store_sees_the_history(mongodb_uri: str, mongodb_database: str) -> None:
    async with opened(mongodb_uri, mongodb_database) as first:
        written = [await first.append(draft(n)) for n in range(5)]
    async with opened(mongodb_uri, mongodb_database) as second:
        assert (await second.page("r1", limit=10)).messages == written
        assert (await second.append(draft(5))).seq == 6


async def test_every_ack_survives_kill_9_of_the_appender(
    mongodb_uri: str, mongodb_database: str, mongodb_admin: MongoClient[dict[str, Any]]
) -> None:
    appender = await asyncio.create_subprocess_exec(
        *(
            sys.executable,
            str(APPENDER),
            mongodb_uri,
            mongodb_database,
            "r1",
            "1000000",
            "--concurrency",
            "50",
        ),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert appender.stdin is not None and appender.stdout is not None
    try:
        assert await asyncio.wait_for(appender.stdout.readline(), 20) == b"ready\n"
        appender.stdin.write(b"go\n")
        acked: list[int] = []
        while len(acked) < 500:
            acked.append(int(await asyncio.wait_for(appender.stdout.readline(), 20)))
    finally:
        os.kill(appender.pid, signal.SIGKILL)
        rest, _ = await appender.communicate()
    acked += [int(line) for line in rest.split()]
    assert appender.returncode == -signal.SIGKILL
    stored = stored_seqs(mongodb_admin, mongodb_database)
    assert set(acked) <= set(stored)
    assert stored == list(range(1, len(stored) + 1))


async def test_every_ack_survives_kill_9_of_mongod(mongod_factory: MongodFactory) -> None:
    mongod = mongod_factory()
    acked: list[Message] = []
    enough = asyncio.Event()
    async with opened(mongod.uri, "chat", timeout_seconds=1.0) as store:

        async def sender(user: str) -> None:
            for n in range(1_000_000):
                try:
                    acked.append(await store.append(draft(n, user=user, cid=str(n))))
                except Unavailable:
                    return
                if len(acked) >= 500:
                    enough.set()

        senders = [asyncio.create_task(sender(f"u{k}")) for k in range(50)]
        await asyncio.wait_for(enough.wait(), 20)
        mongod.kill()
        await asyncio.wait_for(asyncio.gather(*senders), 10)
    mongod.start()
    async with opened(mongod.uri, "chat") as store:
        page = await store.page("r1", after=0, limit=100_000)
    assert set(acked) <= set(page.messages)
    assert [message.seq for message in page.messages] == list(range(1, len(page.messages) + 1))


async def test_a_cancelled_append_not_yet_written_is_withdrawn(
    mongodb_uri: str, mongodb_database: str
) -> None:
    async with opened(mongodb_uri, mongodb_database) as store:
        withdrawn = asyncio.ensure_future(store.append(draft(0)))
        await asyncio.sleep(0)  # queued, and the writer is about to take the queue
        withdrawn.cancel()
        assert (await store.append(draft(1))).seq == 1
        assert [message.text for message in (await store.page("r1", limit=5)).messages] == ["message 1"]
    assert withdrawn.cancelled()


def test_unacknowledged_writes_are_refused() -> None:
    with pytest.raises(ConfigError, match="CHATIO_MONGODB_WRITE_CONCERN"):
        load_settings({"CHATIO_MONGODB_URI": "mongodb://127.0.0.1:1/", "CHATIO_MONGODB_WRITE_CONCERN": "0"})
    with pytest.raises(ValueError, match="write concern"):
        MongoStore("mongodb://127.0.0.1:1/", write_concern="0")


async def test_start_without_mongodb_is_unavailable_in_time() -> None:
    store = MongoStore(f"mongodb://127.0.0.1:{free_port()}/", timeout_seconds=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await store.start()
        assert time.monotonic() - started < 1.0
    finally:
        await store.close()


def _find(tree: Any, key: str) -> list[Any]:
    """Every value of ``key`` anywhere in a nested explain document."""
    if isinstance(tree, dict):
        return [v for k, v in tree.items() if k == key] + [x for v in tree.values() for x in _find(v, key)]
    if isinstance(tree, list):
        return [x for v in tree for x in _find(v, key)]
    return []


async def test_search_in_a_big_room_is_answered_from_the_grams_index(
    mongodb_uri: str, mongodb_database: str, mongodb_admin: MongoClient[dict[str, Any]]
) -> None:
    def text(n: int) -> str:
        return f"{n}번째 메시지: 오늘 날씨는 {'맑음' if n % 1000 == 7 else '흐림'}, hello world {n % 13}"

    async with opened(mongodb_uri, mongodb_database) as store:
        for start in range(0, 10_000, 1000):
            await asyncio.gather(
                *(store.append(Draft("big", "id-a", "a", text(n))) for n in range(start, start + 1000))
            )
        found = await store.search("맑음 날씨", rooms=["big"], limit=20)
        assert sorted(m.seq for m in found) == [n + 1 for n in range(7, 10_000, 1000)]
        assert len(await store.search("hello wor", rooms=["big"], limit=100, skip=900)) == 100
    pipeline = search_pipeline(plan("맑음 날씨"), ["big"], limit=20)
    explained = mongodb_admin[mongodb_database].command(
        "explain", {"aggregate": "messages", "pipeline": pipeline, "cursor": {}}, verbosity="executionStats"
    )
    winning = _find(explained, "winningPlan")
    stages = _find(winning, "stage")
    assert "IXSCAN" in stages and "COLLSCAN" not in stages, winning
    assert set(_find(winning, "indexName")) == {"grams_room"}
    # Only the ten messages that hold the rarer gram are read, not the room's 10,000.
    examined = [stats["totalDocsExamined"] for stats in _find(explained, "executionStats")]
    assert examined and max(examined) == 10, examined
