"""One contract for every AccessStore: the in-memory one and MongoDB (a real mongod, one database each)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from chatio.store.access import ADMIN, MEMBER, OWNER, AccessStore, Invitation
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
