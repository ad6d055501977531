"""One contract for every AccessStore: the in-memory one and MongoDB (a real mongod, one database each)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from chatio.store.access import (
    ADMIN,
    BAN,
    MEMBER,
    MUTE,
    OWNER,
    AccessStore,
    AuditEntry,
    Invitation,
    Restriction,
)
from chatio.store.access_memory import MemoryAccessStore
from chatio.store.access_mongo import MongoAccessStore
from tests.accounts_helpers import started_backend


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.mongo)])
async def acl(request: pytest.FixtureRequest) -> AsyncIterator[AccessStore]:
    async with started_backend(request, MemoryAccessStore, MongoAccessStore) as backend:
        yield backend


def invitation(room: str, user: str, by: str = "owner-id", at: int = 1) -> Invitation:
    return Invitation(room, user, by, "owner", at)


async def test_roles_per_room_and_user(acl: AccessStore) -> None:
    await acl.set_role("r1", "u1", OWNER)
    await acl.set_role("r1", "u2", MEMBER)
    await acl.set_role("r2", "u2", MEMBER)
    assert (await acl.role("r1", "u1"), await acl.role("r1", "u2"), await acl.role("r1", "u3")) == (
        OWNER,
        MEMBER,
        None,
    )
    before = await acl.rooms_of("u2")
    await acl.set_role("r1", "u2", ADMIN)
    after = await acl.rooms_of("u2")
    assert [(m.room, m.role) for m in after] == [("r1", ADMIN), ("r2", MEMBER)]
    assert after[0].since == before[0].since  # a role change keeps the membership's age
    assert await acl.remove_member("r1", "u2") and not await acl.remove_member("r1", "u2")
    assert await acl.role("r1", "u2") is None


async def test_rooms_of_filters_by_prefix_literally(acl: AccessStore) -> None:
    for room in ["dm:a:b", "dm:a:c", "dmx", "d.m", "lobby"]:
        await acl.set_role(room, "a", MEMBER)
    assert [m.room for m in await acl.rooms_of("a", prefix="dm:")] == ["dm:a:b", "dm:a:c"]
    assert [m.room for m in await acl.rooms_of("a", prefix="d.")] == ["d.m"]
    assert len(await acl.rooms_of("a")) == 5 and await acl.rooms_of("nobody") == []


async def test_an_invitation_is_taken_once(acl: AccessStore) -> None:
    assert await acl.invite(invitation("r1", "u2"))
    assert not await acl.invite(invitation("r1", "u2", by="someone-else"))
    assert await acl.invite(invitation("r0", "u2", at=2))
    assert [(i.room, i.by) for i in await acl.invitations_for("u2")] == [
        ("r1", "owner-id"),
        ("r0", "owner-id"),
    ]
    taken = await asyncio.gather(*(acl.take_invitation("r1", "u2") for _ in range(5)))
    assert [t for t in taken if t is not None] == [invitation("r1", "u2")]
    assert await acl.take_invitation("r1", "u2") is None
    assert [i.room for i in await acl.invitations_for("u2")] == ["r0"]


async def test_forgetting_a_user(acl: AccessStore) -> None:
    await acl.set_role("r1", "gone", MEMBER)
    await acl.set_role("r1", "stays", OWNER)
    await acl.invite(invitation("r2", "gone"))
    await acl.invite(invitation("r3", "stays", by="gone"))
    await acl.invite(invitation("r4", "stays"))
    await acl.forget_user("gone")
    assert await acl.rooms_of("gone") == [] and await acl.invitations_for("gone") == []
    assert [i.room for i in await acl.invitations_for("stays")] == ["r4"]
    assert await acl.role("r1", "stays") == OWNER


async def test_bans_and_mutes_hold_until_lifted_or_over(acl: AccessStore) -> None:
    await acl.restrict(Restriction("r1", "u1", BAN, None))
    await acl.restrict(Restriction("r1", "u1", MUTE, 2_000))
    await acl.restrict(Restriction("r2", "u1", MUTE, 500))
    assert await acl.restrictions("r1", "u1", now=1_000) == [
        Restriction("r1", "u1", BAN, None),
        Restriction("r1", "u1", MUTE, 2_000),
    ]
    assert await acl.restrictions("r1", "u1", now=3_000) == [Restriction("r1", "u1", BAN, None)]
    assert await acl.restrictions("r2", "u1", now=1_000) == []  # over
    await acl.restrict(Restriction("r1", "u1", MUTE, 9_000))  # replaces the earlier mute
    assert (await acl.restrictions("r1", "u1", now=3_000))[-1].until == 9_000
    assert await acl.lift("r1", "u1", BAN) and not await acl.lift("r1", "u1", BAN)
    assert [r.kind for r in await acl.restrictions("r1", "u1", now=3_000)] == [MUTE]
    assert await acl.restrictions("r1", "u2", now=0) == []


async def test_a_rooms_bans_and_mutes_in_force_newest_first(acl: AccessStore) -> None:
    first = Restriction("r1", "u1", BAN, None, "troll", "owner", "spam", 1_000)
    second = Restriction("r1", "u2", BAN, 5_000, "pest", "admin", "", 2_000)
    await acl.restrict(first)
    await acl.restrict(second)
    await acl.restrict(Restriction("r1", "u3", BAN, 1_500, "gone", "owner", "", 1_200))  # over at 3_000
    await acl.restrict(Restriction("r1", "u1", MUTE, 9_000, "troll", "owner", "loud", 1_100))
    await acl.restrict(Restriction("r2", "u4", BAN, None, "elsewhere", "owner", "", 3_000))
    assert await acl.room_restrictions("r1", BAN, now=3_000, limit=10) == [second, first]
    assert await acl.room_restrictions("r1", BAN, now=3_000, limit=1) == [second]
    assert [r.user for r in await acl.room_restrictions("r1", MUTE, now=3_000, limit=10)] == ["troll"]
    assert await acl.room_restrictions("r1", BAN, now=6_000, limit=10) == [first]
    assert await acl.lift("r1", "u1", BAN)
    assert await acl.room_restrictions("r1", BAN, now=3_000, limit=10) == [second]
    assert await acl.room_restrictions("r3", BAN, now=0, limit=10) == []


async def test_the_audit_trail_is_read_newest_first(acl: AccessStore) -> None:
    entries = [
        AuditEntry(f"{n:024x}", f"r{n % 2}", "ban", "a-id", "admin", "t-id", "troll", f"why {n}", 1_000 + n)
        for n in range(5)
    ]
    for entry in entries:
        await acl.record(entry)
    assert await acl.audit(room=None, limit=3) == entries[::-1][:3]
    assert await acl.audit(room="r1", limit=10) == [entries[3], entries[1]]
    deletion = AuditEntry(
        "f" * 24, "r1", "delete_message", "a-id", "admin", "t-id", "troll", "", 2_000, None, "m" * 24
    )
    await acl.record(deletion)
    assert (await acl.audit(room="r1", limit=1)) == [deletion]
