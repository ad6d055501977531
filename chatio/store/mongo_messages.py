"""Group commit for the ``messages`` collection: per-room ``seq`` without gaps, one durable write per batch.

Seq
    A room's next ``seq`` is one more than the highest ``seq`` stored in that room; the unique index on
    ``(room, seq)`` arbitrates between writers (other processes, other stores). There is no counter
    document, so nothing can be reserved and then lost: a ``seq`` exists only as part of a stored message.
    A batch is written with ordered ``insert_many``; the server stops at the first failing document, so
    every stored document's predecessor in its room is either before it in the same ordered write or was
    already stored when it was read. Messages are never deleted, hence a room's seqs are exactly
    ``1..max``, and readers never see a hole, not even briefly: a seq is written only once its predecessor
    is visible. (A failover cannot punch one either: the oplog is a single sequence, so when a message
    rolls back every later one does too, and a majority-acknowledged message has majority-committed
    predecessors.)

    The writer keeps the last stored seq per room in memory, so the common case costs no read. When
    another writer got there first, the insert fails with a duplicate ``(room, seq)``; the writer re-reads
    that room's highest seq, renumbers what is left of the batch and inserts again. From then on the room
    counts as contended: its seq is read before each insert, and its messages go in an insert of their own
    beside the rest of the batch (so that one busy room does not stall the others), until a read shows
    that nobody else wrote to it since our last insert.

    Rejected: a counter collection (``$inc`` reserving a block per batch). It costs a second durable write
    per batch; a block whose insert fails or times out, or whose process dies, is a permanent gap; and while
    one writer's block is in flight another's later block can already be visible, so a reader paging by
    seq skips messages that appear afterwards. A transaction around counter and insert closes the gaps,
    but under cross-process contention on one room it aborts with write conflicts instead of queueing.

Group commit
    :meth:`GroupCommit.submit` queues a draft; one writer task takes up to ``max_batch`` queued drafts
    (after waiting at most ``max_wait`` seconds for as many as the last batch had), writes them with one
    ``insert_many`` under the collection's write concern and resolves each caller. While one batch is in
    flight the next one gathers, so concurrency raises batch size, not the number of writes; every caller
    still returns only after its own message was acknowledged.

Idempotency
    Drafts repeating a ``(room, user_id, client_msg_id)`` within one batch are written once and all get
    that message. A repeat of an earlier message fails on the partial unique index; the writer then reads
    the originals of the rest of the batch's client ids at once, answers those with their originals and
    inserts the remainder. The same path settles a race between processes.

Failure
    Every batch runs under ``timeout`` seconds (pymongo's client-side operation timeout). If it fails, its
    callers get :class:`~chatio.store.Unavailable`, the seq memory of its rooms is dropped (the write may
    have landed after all) and the writer carries on with the next batch. Callers wait at most ``timeout``
    seconds from :meth:`GroupCommit.submit`; a draft whose caller gave up (or was cancelled) before its
    batch was written is skipped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

import pymongo
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError
from pymongo.read_concern import ReadConcern

from chatio.store import Draft, Message, Quote, Unavailable, new_id, ngrams, now_ms

log = logging.getLogger(__name__)

Document = dict[str, Any]

DUPLICATE_KEY: Final = 11000
# The writer remembers the last seq of at most this many rooms; a forgotten room costs one indexed read.
SEQ_MEMORY: Final = 100_000


def message_from_document(document: Mapping[str, Any], reply_count: int = 0) -> Message:
    quoted = document.get("reply_to")
    return Message(
        id=document["_id"],
        room=document["room"],
        seq=document["seq"],
        user_id=document["user_id"],
        user=document["user"],
        text=document["text"],
        ts=document["ts"],
        client_msg_id=document.get("client_msg_id"),
        reply_to=None if quoted is None else quote_from_document(quoted),
        reply_count=reply_count,
        edited_at=document.get("edited_at"),
        deleted=bool(document.get("deleted", False)),
        reactions=tuple(
            (emoji, tuple(users)) for emoji, users in document.get("reactions", {}).items() if users
        ),
        change=document.get("change", 0),
        display_name=document.get("display_name"),
    )


def quote_from_document(document: Mapping[str, Any]) -> Quote:
    return Quote(
        document["id"], document["seq"], document["user_id"], document["user"], document.get("excerpt")
    )


def quote_document(quote: Quote) -> Document:
    return {
        "id": quote.id,
        "seq": quote.seq,
        "user_id": quote.user_id,
        "user": quote.user,
        "excerpt": quote.excerpt,
    }


def unavailable(what: str, error: BaseException) -> Unavailable:
    """The :class:`Unavailable` to raise, from ``error``, when MongoDB failed at ``what``."""
    reason = "timed out" if isinstance(error, TimeoutError) or getattr(error, "timeout", False) else "failed"
    return Unavailable(f"MongoDB {what} {reason}: {type(error).__name__}: {error}")


@dataclasses.dataclass(slots=True)
class WriterStats:
    """What the writer did since it started; for benchmarks, tests and metrics."""

    batches: int = 0  # insert_many calls, retries included
    stored: int = 0  # messages stored
    seq_conflicts: int = 0  # inserts that found their first seq taken by another writer
    repeats: int = 0  # drafts answered with a message stored earlier


@dataclasses.dataclass(slots=True, eq=False)
class _Request:
    draft: Draft
    future: asyncio.Future[Message]
    deadline: asyncio.TimerHandle

    def resolve(self, message: Message) -> None:
        self.deadline.cancel()
        if not self.future.done():
            self.future.set_result(message)

    def fail(self, error: BaseException) -> None:
        self.deadline.cancel()
        if not self.future.done():
            self.future.set_exception(error)


@dataclasses.dataclass(slots=True, eq=False)
class _Pending:
    """One document to insert and every request it answers (repeats of one client id in a batch)."""

    document: Document
    requests: list[_Request]

    @property
    def room(self) -> str:
        room: str = self.document["room"]
        return room

    @property
    def client_key(self) -> tuple[str, str, str] | None:
        draft = self.requests[0].draft
        return None if draft.client_msg_id is None else (draft.room, draft.user_id, draft.client_msg_id)

    def resolve(self, message: Message) -> None:
        for request in self.requests:
            request.resolve(message)

    def fail(self, error: BaseException) -> None:
        for request in self.requests:
            request.fail(error)


class GroupCommit:
    """The single writer of one store's messages. Call :meth:`start` inside the event loop."""

    def __init__(
        self,
        messages: AsyncCollection[Document],
        *,
        timeout: float,
        max_wait: float,
        max_batch: int,
        majority: bool,
    ) -> None:
        self._messages = messages
        # A repeat's original must be as durable as the caller's own write would have been.
        self._originals = messages.with_options(read_concern=ReadConcern("majority" if majority else "local"))
        self._timeout = timeout
        self._max_wait = max_wait
        self._max_batch = max_batch
        self._queue: collections.deque[_Request] = collections.deque()
        self._wake = asyncio.Event()
        self._wake_at = 1
        self._last_batch_size = 1
        self._last_seq: dict[str, int] = {}
        # Rooms where another writer took a seq lately: read their last seq before each insert.
        self._contended: set[str] = set()
        self.stats = WriterStats()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="chatio-group-commit")

    async def submit(self, draft: Draft) -> Message:
        """Queue ``draft``; return its stored message once acknowledged, or raise ``Unavailable``."""
        if self._task is None or self._closing:
            raise Unavailable("the message store is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()
        # A plain timer rather than asyncio.timeout() around a shield(): half the cost per message. When it
        # fires, or the caller is cancelled, the future is done and the writer skips the draft if it has
        # not taken it yet; a draft already in flight may still land (see Unavailable).
        deadline = loop.call_at(loop.time() + self._timeout, self._expire, future)
        self._queue.append(_Request(draft, future, deadline))
        if len(self._queue) >= self._wake_at:
            self._wake.set()
        return await future

    def _expire(self, future: asyncio.Future[Message]) -> None:
        if not future.done():
            future.set_exception(Unavailable(f"MongoDB did not store the message within {self._timeout:g} s"))

    async def close(self) -> None:
        """Write what is queued (bounded by ``timeout``), then stop the writer."""
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                async with asyncio.timeout(self._timeout + 1):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        while self._queue:
            self._queue.popleft().fail(Unavailable("the message store closed"))

    # --- the writer task --------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            if batch is None:
                return
            try:
                await self._commit(batch)
            except Exception as exc:  # a defect, not an outage: say so loudly and keep writing
                log.exception("group commit failed unexpectedly; the batch's callers get Unavailable")
                error = Unavailable(f"the message store failed: {type(exc).__name__}: {exc}")
                for request in batch:
                    request.fail(error)

    async def _next_batch(self) -> list[_Request] | None:
        while not self._queue:
            if self._closing:
                return None
            self._wake.clear()
            self._wake_at = 1
            await self._wake.wait()
        # Wait for company only as large as the last batch: the callers it answered are likely sending
        # again right now, while a lone sender should not sit out max_wait for nobody.
        expected = min(self._last_batch_size, self._max_batch)
        if len(self._queue) < expected and self._max_wait > 0 and not self._closing:
            self._wake.clear()
            self._wake_at = expected
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._max_wait):
                    await self._wake.wait()
        self._wake_at = 1
        batch: list[_Request] = []
        while self._queue and len(batch) < self._max_batch:
            request = self._queue.popleft()
            if request.future.done():  # its caller gave up waiting, or was cancelled
                request.deadline.cancel()
            else:
                batch.append(request)
        self._last_batch_size = len(batch)
        return batch

    async def _commit(self, batch: list[_Request]) -> None:
        while len(self._last_seq) > SEQ_MEMORY:
            del self._last_seq[next(iter(self._last_seq))]  # the first remembered goes first
        if len(self._contended) > SEQ_MEMORY:
            self._contended.clear()  # rooms that went quiet without a batch to notice
        pending = self._documents(batch)
        try:
            with pymongo.timeout(self._timeout):
                await self._insert(pending)
        except PyMongoError as exc:
            self._forget(item.room for item in pending)
            error = unavailable("insert", exc)
            for item in pending:
                item.fail(error)

    def _documents(self, batch: list[_Request]) -> list[_Pending]:
        ts = now_ms()
        pending: list[_Pending] = []
        by_client_id: dict[tuple[str, str, str], _Pending] = {}
        for request in batch:
            draft = request.draft
            key = None if draft.client_msg_id is None else (draft.room, draft.user_id, draft.client_msg_id)
            if key is not None and key in by_client_id:
                by_client_id[key].requests.append(request)
                continue
            document: Document = {
                "_id": new_id(),
                "room": draft.room,
                "seq": 0,
                "user_id": draft.user_id,
                "user": draft.user,
                "text": draft.text,
                "grams": ngrams.grams(draft.text),
                "ts": ts,
            }
            if draft.client_msg_id is not None:
                document["client_msg_id"] = draft.client_msg_id
            if draft.reply_to is not None:
                document["reply_to"] = quote_document(draft.reply_to)
            if draft.display_name is not None:
                document["display_name"] = draft.display_name
            item = _Pending(document, [request])
            pending.append(item)
            if key is not None:
                by_client_id[key] = item
        return pending

    async def _insert(self, pending: list[_Pending]) -> None:
        """Insert ``pending`` in order with gap-free seqs, resolving each item as it is known stored.

        Raises PyMongoError when it gives up; items still unresolved then have not been acknowledged.
        """
        while pending:
            rooms = {item.room for item in pending}
            contended = rooms & self._contended
            if contended and len(rooms) > 1:
                await self._insert_apart(pending, contended)
                return
            await self._load_last_seq((rooms - self._last_seq.keys()) | contended)
            following = {room: self._last_seq[room] for room in rooms}
            for item in pending:
                following[item.room] += 1
                item.document["seq"] = following[item.room]
            self.stats.batches += 1
            try:
                await self._messages.insert_many([item.document for item in pending], ordered=True)
            except BulkWriteError as exc:
                pending = await self._recover(pending, exc)
            else:
                self._stored(pending)
                return

    async def _insert_apart(self, pending: list[_Pending], contended: set[str]) -> None:
        """One insert per contended room, one for the rest, side by side.

        In one ordered insert, every room another writer is also filling would stop the whole batch in
        turn; apart, a lost seq only makes its own room try again.
        """
        groups = [[item for item in pending if item.room == room] for room in contended]
        groups.append([item for item in pending if item.room not in contended])
        outcomes = await asyncio.gather(*(self._insert(group) for group in groups), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _recover(self, pending: list[_Pending], exc: BulkWriteError) -> list[_Pending]:
        """After a partly failed insert: resolve the stored prefix, return what must be inserted again."""
        details = exc.details
        if details.get("writeConcernErrors"):
            raise exc  # written but not acknowledged as asked: nobody may be told it is stored
        first = details["writeErrors"][0]
        done, rest = pending[: first["index"]], pending[first["index"] :]
        self._stored(done)
        if first.get("code") != DUPLICATE_KEY:
            raise exc
        key = first.get("keyPattern", {})
        if "client_msg_id" in key:
            remaining = await self._answer_repeats(rest)
            if len(remaining) == len(rest):
                # The original is not visible under our read concern yet; give it a moment.
                await asyncio.sleep(0.005)
            return remaining
        if "seq" in key:
            # Another writer took it: read the room again, and before every insert until it goes quiet.
            self.stats.seq_conflicts += 1
            self._last_seq.pop(rest[0].room, None)
            self._contended.add(rest[0].room)
        elif "_id" in key:
            rest[0].document["_id"] = new_id()
        else:
            raise exc
        return rest

    async def _answer_repeats(self, pending: list[_Pending]) -> list[_Pending]:
        """Answer items whose client id is already stored with the original; return the others."""
        asked = {item.client_key: item for item in pending if item.client_key is not None}
        found: dict[tuple[str, str, str], Message] = {}
        if asked:
            query = [{"room": r, "user_id": u, "client_msg_id": c} for r, u, c in asked]
            async for document in self._originals.find({"$or": query}, {"grams": 0}):
                message = message_from_document(document)
                found[(message.room, message.user_id, message.client_msg_id or "")] = message
        remaining: list[_Pending] = []
        for item in pending:
            original = None if item.client_key is None else found.get(item.client_key)
            if original is None:
                remaining.append(item)
            else:
                self.stats.repeats += len(item.requests)
                item.resolve(original)
        return remaining

    def _stored(self, items: Iterable[_Pending]) -> None:
        for item in items:
            self._last_seq[item.room] = item.document["seq"]
            self.stats.stored += 1
            self.stats.repeats += len(item.requests) - 1
            item.resolve(message_from_document(item.document))

    async def _load_last_seq(self, rooms: set[str]) -> None:
        async def last_seq(room: str) -> tuple[str, int]:
            newest = await self._messages.find_one({"room": room}, {"seq": 1, "_id": 0}, sort=[("seq", -1)])
            return room, 0 if newest is None else int(newest["seq"])

        if not rooms:
            return
        for room, seq in await asyncio.gather(*(last_seq(room) for room in rooms)):
            if room in self._contended and self._last_seq.get(room) == seq:
                self._contended.discard(room)  # nobody else wrote since our last insert
            self._last_seq[room] = seq

    def _forget(self, rooms: Iterable[str]) -> None:
        for room in rooms:
            self._last_seq.pop(room, None)
