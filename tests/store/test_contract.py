"""One contract for every Store implementation; the ``store`` fixture (conftest.py) yields each backend."""

from __future__ import annotations

import asyncio

import pytest

from chatio.store import Conflict, Draft, Message, Quote, Store, excerpt


def draft(
    room: str = "r1",
    text: str = "hi",
    user: str = "alice",
    cid: str | None = None,
    reply: Message | None = None,
) -> Draft:
    quote = (
        None if reply is None else Quote(reply.id, reply.seq, reply.user_id, reply.user, excerpt(reply.text))
    )
    return Draft(room=room, user_id=f"id-{user}", user=user, text=text, client_msg_id=cid, reply_to=quote)


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
    prefixed = await store.append(draft(text="deployment of the renewed builder"))
    other = await store.append(draft(room="r2", text="new build, new deploy"))
    found = await store.search("new deploy build", rooms=None, limit=10)
    assert {message.id for message in found} == {hit.id, other.id}  # "renewed" does not begin with "new"
    assert {m.id for m in await store.search("deploy build", rooms=None, limit=10)} == {
        hit.id,
        prefixed.id,
        other.id,
    }
    assert await store.search("new build deploy", rooms=["r1"], limit=10) == [hit]
    assert await store.search("new build deploy", rooms=["r2", "r3"], limit=10) == [other]
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


async def test_an_edit_replaces_the_text_and_takes_the_next_change(store: Store) -> None:
    first, second = await store.append(draft(text="teh typo")), await store.append(draft(text="two"))
    assert first.change == 0 and first.edited_at is None and await store.last_change("r1") == 0
    edited = await store.edit("r1", first.id, "the typo")
    assert edited is not None and edited.text == "the typo" and edited.seq == first.seq
    assert edited.edited_at is not None and edited.edited_at >= first.ts and edited.change >= 1
    again = await store.edit("r1", second.id, "2")
    assert (
        again is not None and again.change > edited.change == (await store.get_message("r1", first.id)).change
    )  # type: ignore[union-attr]
    assert await store.last_change("r1") == again.change
    assert (await store.page("r1", limit=5)).messages == [edited, again]
    assert await store.edit("r1", "0" * 24, "x") is None
    assert await store.edit("r2", first.id, "x") is None  # the id is looked up in the room given
    assert await store.search("typo", rooms=None, limit=5) == [edited]


async def test_a_deletion_leaves_a_tombstone_and_clears_the_quotes_of_its_replies(store: Store) -> None:
    parent = await store.append(draft(text="secret words here"))
    reply = await store.append(draft(text="answer", user="bob", reply=parent))
    assert reply.reply_to is not None and reply.reply_to.excerpt == "secret words here"
    assert reply.reply_to.user == "alice" and reply.reply_to.seq == parent.seq
    await store.react("r1", parent.id, "👍", "bob", add=True)
    tombstone = await store.delete("r1", parent.id)
    assert tombstone is not None and tombstone.deleted and tombstone.text == "" and tombstone.reactions == ()
    assert tombstone.seq == parent.seq and tombstone.change > 0
    page = (await store.page("r1", limit=5)).messages
    assert page[0] == tombstone
    assert (
        page[1].reply_to is not None and page[1].reply_to.excerpt is None and page[1].reply_to.id == parent.id
    )
    assert await store.search("secret", rooms=None, limit=5) == []
    assert await store.delete("r1", parent.id) == tombstone  # again: unchanged
    assert await store.edit("r1", parent.id, "back") is None
    assert await store.react("r1", parent.id, "👍", "bob", add=True) is None
    assert await store.delete("r1", "0" * 24) is None


async def test_reply_counts_count_stored_replies_once(store: Store) -> None:
    parent = await store.append(draft(text="question"))
    await store.append(draft(text="a1", user="bob", reply=parent, cid="r-1"))
    await store.append(draft(text="a1 again", user="bob", reply=parent, cid="r-1"))
    await store.append(draft(text="a2", reply=parent))
    stored = await store.get_message("r1", parent.id)
    assert stored is not None and stored.reply_count == 2
    assert [m.reply_count for m in await store.search("question", rooms=None, limit=5)] == [2]
    assert (await store.page("r1", limit=1, before=2)).messages[0].reply_count == 2


async def test_reactions_are_one_per_user_and_emoji(store: Store) -> None:
    message = await store.append(draft())
    one = await store.react("r1", message.id, "👍", "bob", add=True)
    assert one is not None and one.reactions == (("👍", ("bob",)),)
    same = await store.react("r1", message.id, "👍", "bob", add=True)
    assert same == one  # nothing to do: no new change
    await store.react("r1", message.id, "🎉", "bob", add=True)
    three = await store.react("r1", message.id, "👍", "carol", add=True)
    assert three is not None and three.reactions == (("👍", ("bob", "carol")), ("🎉", ("bob",)))
    removed = await store.react("r1", message.id, "🎉", "bob", add=False)
    assert removed is not None and removed.reactions == (("👍", ("bob", "carol")),)
    assert await store.react("r1", message.id, "🎉", "bob", add=False) == removed
    assert (await store.page("r1", limit=1)).messages == [removed]
    assert await store.react("r1", "0" * 24, "👍", "bob", add=True) is None


async def test_changes_list_changed_older_messages_in_change_order(store: Store) -> None:
    messages = [await store.append(draft(text=str(n))) for n in range(6)]
    await store.edit("r1", messages[3].id, "three")
    mark = await store.last_change("r1")
    await store.react("r1", messages[1].id, "👍", "bob", add=True)
    await store.delete("r1", messages[0].id)
    await store.edit("r1", messages[5].id, "five")
    await store.edit("r1", messages[1].id, "one")
    changed = await store.changes("r1", after_change=mark, upto_seq=4, limit=10)
    assert [(m.seq, m.text) for m in changed.messages] == [(1, ""), (2, "one")] and not changed.has_more
    everything = await store.changes("r1", after_change=0, upto_seq=6, limit=2)
    assert [m.seq for m in everything.messages] == [4, 1] and everything.has_more
    assert (
        await store.changes("r1", after_change=await store.last_change("r1"), upto_seq=9, limit=5)
    ).messages == []
    assert (await store.changes("nowhere", after_change=0, upto_seq=9, limit=5)).messages == []


async def test_read_marks_only_rise(store: Store) -> None:
    assert await store.last_read("r1", "id-bob") is None
    assert await store.mark_read("r1", "id-bob", "bob", 5) == 5
    assert await store.mark_read("r1", "id-bob", "bob", 3) == 5  # another device, behind: no step back
    assert await store.mark_read("r1", "id-bob", "bob", 7) == 7
    await asyncio.gather(*(store.mark_read("r1", "id-carol", "carol", n) for n in range(1, 20)))
    assert await store.last_read("r1", "id-carol") == 19
    await store.mark_read("r2", "id-bob", "bob", 1)
    marks = await store.read_marks("r1", limit=10)
    assert [(m.user, m.seq) for m in marks] == [("carol", 19), ("bob", 7)]
    assert [(m.room, m.seq) for m in await store.read_rooms("id-bob", limit=10)] == [("r1", 7), ("r2", 1)]
    assert await store.read_rooms("id-nobody", limit=10) == []


async def test_unread_counts_live_messages_of_others(store: Store) -> None:
    mine = await store.append(draft(text="mine", user="bob"))
    others = [await store.append(draft(text=str(n))) for n in range(4)]
    await store.delete("r1", others[1].id)
    assert await store.unread("r1", "id-bob", 0, cap=100) == 3
    assert await store.unread("r1", "id-bob", mine.seq + 2, cap=100) == 2
    assert await store.unread("r1", "id-bob", 0, cap=2) == 2
    assert await store.unread("r1", "id-alice", 0, cap=100) == 1
    assert await store.unread("nowhere", "id-bob", 0, cap=100) == 0


async def test_rooms_opt_out_of_receipts(store: Store) -> None:
    room = await store.create_room("quiet", "Quiet", public=True, owner=None)
    assert room.receipts
    changed = await store.set_receipts("quiet", False)
    assert changed is not None and not changed.receipts
    assert await store.get_room("quiet") == changed
    assert await store.set_receipts("missing", False) is None


async def test_expiry_removes_old_messages_but_the_newest_and_seqs_go_on(store: Store) -> None:
    old = [await store.append(draft(text=f"old {n}")) for n in range(3)]
    await asyncio.sleep(0.01)
    reply = await store.append(draft(text="answer", reply=old[0]))
    cutoff = reply.ts
    assert await store.expire("r1", cutoff) == 3
    page = await store.page("r1", limit=10)
    assert [m.seq for m in page.messages] == [4] and not page.has_more
    assert page.messages[0].reply_to is not None and page.messages[0].reply_to.excerpt is None
    assert await store.search("old", rooms=None, limit=10) == []
    assert (await store.append(draft(text="next"))).seq == 5
    assert await store.expire("r1", cutoff + 10_000_000) == 1  # all but the newest
    assert [m.seq for m in (await store.page("r1", limit=10)).messages] == [5]
    assert (await store.page("r1", after=1, limit=10)).messages[0].seq == 5  # a gap: catch-up resets
    assert await store.expire("nowhere", cutoff) == 0


async def test_rooms_list_for_sweeping_and_keep_their_own_retention(store: Store) -> None:
    for room_id in ("b", "a", "c"):
        await store.create_room(room_id, room_id, public=room_id != "c", owner=None)
    assert await store.room_ids(after=None, limit=2) == ["a", "b"]
    assert await store.room_ids(after="b", limit=5) == ["c"]
    room = await store.set_retention("a", 7)
    assert room is not None and room.retention_days == 7 and (await store.get_room("a")) == room
    assert (await store.get_room("b")).retention_days is None  # type: ignore[union-attr]
    assert await store.set_retention("missing", 1) is None


async def test_search_finds_korean_inside_words(store: Store) -> None:
    weather = await store.append(draft(text="오늘 날씨가 좋네요"))
    hello = await store.append(draft(text="안녕하세요 여러분"))
    await store.append(draft(text="내일은 비가 온대요"))
    assert await store.search("날씨", rooms=None, limit=10) == [weather]  # the particle 가 follows
    assert await store.search("안녕", rooms=None, limit=10) == [hello]
    assert await store.search("좋네요 날씨", rooms=None, limit=10) == [weather]
    assert await store.search("비", rooms=None, limit=10) != []  # one syllable
    # Every bigram of 하세요 is in 안녕하세요, but the order must be too: 세하요 is not.
    assert await store.search("세하요", rooms=None, limit=10) == []
    assert await store.search("날씨 안녕", rooms=None, limit=10) == []  # every term, in one message


async def test_search_finds_japanese_chinese_and_mixed_text(store: Store) -> None:
    japanese = await store.append(draft(text="東京は今日も晴れです"))
    chinese = await store.append(draft(text="我们明天去北京"))
    mixed = await store.append(draft(text="chatio서버 배포 완료! Deploy finished"))
    assert await store.search("晴れ", rooms=None, limit=10) == [japanese]
    assert await store.search("北京", rooms=None, limit=10) == [chinese]
    assert await store.search("서버", rooms=None, limit=10) == [mixed]  # glued to a Latin word
    assert await store.search("chatio 배포", rooms=None, limit=10) == [mixed]
    assert await store.search("DEPLOY 완료", rooms=None, limit=10) == [mixed]


async def test_search_finds_words_by_their_beginning(store: Store) -> None:
    hello = await store.append(draft(text="hello world"))
    await store.append(draft(text="sword fight"))
    long_word = await store.append(draft(text="internationalization matters"))
    assert await store.search("wor", rooms=None, limit=10) == [hello]  # not "sword"
    assert await store.search("orld", rooms=None, limit=10) == []  # beginnings only
    assert await store.search("internationalization", rooms=None, limit=10) == [long_word]
    assert await store.search("internationalizations", rooms=None, limit=10) == []
    assert await store.search("hel wo", rooms=None, limit=10) == [hello]


async def test_search_ranks_the_closer_match_first(store: Store) -> None:
    short = await store.append(draft(text="날씨 좋다"))
    long = await store.append(draft(text="오늘 아침 날씨는 맑고 오후에는 구름이 많겠습니다"))
    assert await store.search("날씨", rooms=None, limit=10) == [short, long]


async def test_users_page_by_username_and_prefix(store: Store) -> None:
    for name in ["carol", "alice", "bob", "alina", "김민지"]:
        await store.create_user(name, name.title())
    assert [u.username for u in await store.users(limit=10)] == ["alice", "alina", "bob", "carol", "김민지"]
    assert [u.username for u in await store.users(limit=2)] == ["alice", "alina"]
    assert [u.username for u in await store.users(after="alina", limit=2)] == ["bob", "carol"]
    assert [u.username for u in await store.users(prefix="al", limit=10)] == ["alice", "alina"]
    assert [u.username for u in await store.users(prefix="al", after="alice", limit=10)] == ["alina"]
    assert [u.username for u in await store.users(prefix="김", limit=10)] == ["김민지"]
    assert await store.users(prefix=".*", limit=10) == []  # a prefix, never a pattern


async def test_a_message_keeps_its_authors_display_name(store: Store) -> None:
    named = await store.append(Draft("r1", "id-minji", "minji", "안녕", display_name="김민지"))
    plain = await store.append(draft(text="no name"))
    assert (named.display_name, plain.display_name) == ("김민지", None)
    assert [m.display_name for m in (await store.page("r1", limit=5)).messages] == ["김민지", None]
    await store.create_user("minji", "김민지")
    found = await store.find_users(["minji", "nobody", "minji"])
    assert [(u.username, u.display_name) for u in found] == [("minji", "김민지")]
    assert await store.find_users([]) == []
