"""What ``join_room`` hands a client that comes back (docs/protocol.md, join_room): the messages after its
``sinceSeq``, the older messages changed after its ``sinceChange``, or ``reset`` with the latest page when
that cannot be told exactly (too much to replay, messages gone to retention, a store that was reset)."""

from __future__ import annotations

import dataclasses
from typing import Final

from chatio.store import Message, Store

#: Changes are replayed from this many change numbers before the client's ``sinceChange``: two concurrent
#: changes may become visible out of number order, and replaying a change is harmless.
CHANGE_MARGIN: Final = 16


@dataclasses.dataclass(frozen=True, slots=True)
class CatchUp:
    history: list[Message]
    reset: bool
    #: Older messages (``seq <= sinceSeq``) edited, deleted or reacted to after ``sinceChange``.
    changes: list[Message]
    #: The room's latest change number, for the client's next ``sinceChange``.
    change: int


async def catch_up(
    store: Store, room_id: str, since_seq: int | None, since_change: int | None, *, page_size: int, most: int
) -> CatchUp:
    """The join ack's ``history``, ``reset``, ``changes`` and ``change``; ``most`` bounds what is replayed."""
    change = await store.last_change(room_id)
    history, reset = await _history(store, room_id, since_seq, page_size=page_size, most=most)
    if since_seq is None or since_change is None or reset:
        return CatchUp(history, reset, [], change)
    after = max(0, since_change - CHANGE_MARGIN)
    changed = await store.changes(room_id, after_change=after, upto_seq=since_seq, limit=most)
    if changed.has_more:
        latest = await store.page(room_id, limit=page_size)
        return CatchUp(latest.messages, True, [], change)
    return CatchUp(history, False, changed.messages, change)


async def _history(
    store: Store, room_id: str, since_seq: int | None, *, page_size: int, most: int
) -> tuple[list[Message], bool]:
    if since_seq is not None:
        after = await store.page(room_id, after=since_seq, limit=most)
        if after.messages and not after.has_more and after.messages[0].seq == since_seq + 1:
            return after.messages, False
    latest = await store.page(room_id, limit=page_size)
    if since_seq is None:
        return latest.messages, False
    newest = latest.messages[-1].seq if latest.messages else 0
    # Too much to replay, messages after since_seq are gone (retention removed them), or the client knows
    # of messages this room never had (its store was reset): start over. Otherwise nothing came after it.
    removed = bool(after.messages) and after.messages[0].seq != since_seq + 1
    reset = after.has_more or removed or since_seq > newest
    return (latest.messages, True) if reset else ([], False)
