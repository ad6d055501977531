"""The grams a store indexes and a query looks up (chatio/store/ngrams.py), and the memory store's
postings staying bounded as its rooms drop old messages."""

from __future__ import annotations

import pytest

from chatio.store import Draft
from chatio.store.memory import MemoryStore
from chatio.store.ngrams import grams, matches, plan

pytestmark = pytest.mark.unit


def test_grams_split_scripts_and_index_cjk_pairs_and_word_beginnings() -> None:
    assert grams("날씨가 OK") == ["날", "날씨", "씨", "씨가", "가", "o", "ok"]
    assert grams("chatio서버") == ["c", "ch", "cha", "chat", "chati", "chatio", "서", "서버", "버"]
    assert plan("날씨 wor").grams == ["wor", "날씨"]  # longest first
    assert plan("좋네요").checks == [("좋네요", True)]
    assert plan(" ?! ").empty


@pytest.mark.parametrize(
    ("query", "text", "found"),
    [
        ("날씨", "오늘 날씨가 좋네요", True),
        ("안녕", "안녕하세요", True),
        ("하세요", "안녕하세요", True),
        ("세하요", "안녕하세요", False),
        ("wor", "hello world", True),
        ("orld", "hello world", False),
        ("Hello 세계", "hello, 세계!", True),
        ("東京", "東京は晴れ", True),
    ],
)
def test_what_a_query_finds(query: str, text: str, found: bool) -> None:
    assert matches(plan(query), text) is found


async def test_memory_postings_stay_bounded_as_old_messages_drop() -> None:
    store = MemoryStore(max_messages_per_room=10)
    for n in range(5000):
        await store.append(Draft("r", "id-a", "a", f"message number{n} 날씨{n % 3}"))
    assert await store.search("number0", rooms=None, limit=5) == []  # dropped long ago
    assert [m.seq for m in await store.search("number4999", rooms=None, limit=5)] == [5000]
    held = store._logs["r"].grams  # the postings themselves: that they stay small is the point
    assert len(held) < 30 * 1024
