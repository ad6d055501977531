"""One contract for every Store implementation; the ``store`` fixture (conftest.py) yields each backend."""

from __future__ import annotations

import asyncio

import pytest

from chatio.store import Conflict, Draft, Store


def draft(room: str = "r1", text: str = "hi", user: str = "alice", cid: str | None = None) -> Draft:
    return Draft(room=room, user_id=f"id-{user}", user=user, text=text, client_msg_id=cid)


async def test_users_are_unique_by_username(store: Store) -> None:
    alice = await store.create_user("alice", "Alice", "a@example.com")
    assert alice.username == "alice" and alice.display_name == "Alice" and not alice.guest
    assert len(alice.id) == 24
    with pytest.raises(Conflict):
        await store.create_user("alice", "Other")
    assert await store.get_user(alice.id) == alice
    assert await store.find_user("alice") == alice
    assert await store.find_user("nobody") is None
    assert await store.get_user("0" * 24) is None


async def test_rooms_are_unique_and_public_ones_page_by_id(store: Store) -> None:
    for name in ["c", "a", "b"]:
        await store.create_room(name, name.upper(), public=True, owner=None)
    await store.create_room("hidden", "Hidden", public=False, owner="x")
    with pytest.raises(Conflict):
        await store.create_room("a", "again", public=True, owner=None)
    first = await store.public_rooms(limit=2)
    assert [room.id for room in first] == ["a", "b"]
    rest = await store.public_rooms(limit=2, after="b")
    assert [room.id for room in rest] == ["c"]
    hidden = await store.get_room("hidden")
    assert hidden is not None and not hidden.public and hidden.owner == "x"
    assert await store.get_room("missing") is None


async def test_seq_is_per_room_and_gap_free(store: Store) -> None:
    seqs = [(await store.append(draft(room="r1", text=str(i)))).seq for i in range(5)]
    other = await store.append(draft(room="r2"))
    assert seqs == [1, 2, 3, 4, 5]
    assert other.seq == 1


async def test_concurrent_appends_get_unique_gap_free_seq(store: Store) -> None:
    messages = await asyncio.gather(*(store.append(draft(text=str(i))) for i in range(50)))
    assert sorted(message.seq for message in messages) == list(range(1, 51))
    page = await store.page("r1", limit=100)
    assert [message.seq for message in page.messages] == list(range(1, 51))


async def test_append_returns_what_was_stored(store: Store) -> None:
    message = await store.append(draft(text="héllo 👋", cid="c-1"))
    assert message.text == "héllo 👋" and message.user == "alice" and message.client_msg_id == "c-1"
    assert len(message.id) == 24 and message.ts > 1_600_000_000_000
    page = await store.page("r1", limit=10)
    assert page.messages == [message]


async def test_repeated_client_msg_id_returns_the_original(store: Store) -> None:
    first = await store.append(draft(text="once", cid="dup"))
    again = await store.append(draft(text="twice", cid="dup"))
    assert again == first
    other_user = await store.append(draft(text="mine", user="bob", cid="dup"))
    other_room = await store.append(draft(room="r2", text="there", cid="dup"))
    assert other_user.seq == 2 and other_room.seq == 1
    assert (await store.counts()).messages == 3


async def test_pages_are_keyset_on_seq_oldest_first(store: Store) -> None:
    for i in range(10):
        await store.append(draft(text=str(i)))

    async def seqs(**kwargs: int) -> tuple[list[int], bool]:
        page = await store.page("r1", **kwargs)
        return [message.seq for message in page.messages], page.has_more

    assert await seqs(limit=3) == ([8, 9, 10], True)
    assert await seqs(limit=20) == (list(range(1, 11)), False)
    assert await seqs(before=8, limit=3) == ([5, 6, 7], True)
    assert await seqs(before=3, limit=3) == ([1, 2], False)
    assert await seqs(after=0, limit=3) == ([1, 2, 3], True)
    assert await seqs(after=7, limit=3) == ([8, 9, 10], False)
    assert await seqs(after=10, limit=3) == ([], False)
    assert await seqs(after=2, before=6, limit=10) == ([3, 4, 5], False)
    assert await seqs(after=2, before=6, limit=2) == ([3, 4], True)
    empty = await store.page("nowhere", limit=5)
    assert empty.messages == [] and not empty.has_more


async def test_counts(store: Store) -> None:
    await store.create_user("u1", "U1")
    await store.create_room("room", "Room", public=True, owner=None)
    await store.append(draft())
    counts = await store.counts()
    assert (counts.users, counts.rooms, counts.messages) == (1, 1, 1)


async def test_search_needs_every_term_in_any_case(store: Store) -> None:
    hit = await store.append(draft(text="Deploy the NEW build today"))
    await store.append(draft(text="the build is green"))
    await store.append(draft(text="deployment of the new builder"))
    other = await store.append(draft(room="r2", text="new build, new deploy"))
    found = await store.search("new deploy build", rooms=None, limit=10)
    assert {message.id for message in found} == {hit.id, other.id}
    assert await store.search("build deploy", rooms=["r1"], limit=10) == [hit]
    assert await store.search("build deploy", rooms=["r2", "r3"], limit=10) == [other]
    assert await store.search("build deploy", rooms=[], limit=10) == []
    assert await store.search("nowhere", rooms=None, limit=10) == []
    assert await store.search(" ?! ", rooms=None, limit=10) == []


async def test_search_ranks_newest_first_among_equals_and_pages(store: Store) -> None:
    stored = [await store.append(draft(text=f"ping {n}")) for n in range(5)]
    await store.append(draft(text="pong"))
    newest_first = list(reversed(stored))
    assert await store.search("PING", rooms=["r1"], limit=2) == newest_first[:2]
    assert await store.search("ping", rooms=["r1"], limit=2, skip=2) == newest_first[2:4]
    assert await store.search("ping", rooms=["r1"], limit=10, skip=4) == newest_first[4:]
    assert await store.search("ping", rooms=["r1"], limit=0) == []


async def test_search_takes_operators_and_quotes_as_plain_words(store: Store) -> None:
    literal = await store.append(draft(text='{"$gt": ""} -x "quoted"'))
    await store.append(draft(text="x quoted"))
    assert await store.search('{"$gt": ""}', rooms=None, limit=10) == [literal]
    assert await store.search('"quoted" -x $gt', rooms=None, limit=10) == [literal]
