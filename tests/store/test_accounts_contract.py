"""One contract for every AccountStore: the in-memory one and MongoDB (a real mongod, one database each)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from chatio.store import Conflict, now_ms
from chatio.store.accounts import AccountStore, Redemption, RefreshToken
from chatio.store.accounts_memory import MemoryAccountStore
from chatio.store.accounts_mongo import MongoAccountStore
from tests.accounts_helpers import started_backend


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.mongo)])
async def accounts(request: pytest.FixtureRequest) -> AsyncIterator[AccountStore]:
    async with started_backend(request, MemoryAccountStore, MongoAccountStore) as backend:
        yield backend


def token(name: str, family: str = "fam-1", user: str = "u1", ttl_ms: int = 60_000) -> RefreshToken:
    now = now_ms()
    return RefreshToken(f"hash-{name}", user, family, now, now + ttl_ms)


async def test_accounts_are_one_per_user(accounts: AccountStore) -> None:
    created = await accounts.create_account("u1", "$argon2id$x")
    assert (created.user_id, created.password_hash, created.admin) == ("u1", "$argon2id$x", False)
    with pytest.raises(Conflict):
        await accounts.create_account("u1", "other")
    assert await accounts.get_account("u1") == created
    assert await accounts.get_account("u2") is None
    await accounts.set_password_hash("u1", "$argon2id$y")
    assert await accounts.set_admin("u1", True)
    stored = await accounts.get_account("u1")
    assert stored is not None and stored.password_hash == "$argon2id$y" and stored.admin
    assert not await accounts.set_admin("u2", True)


async def test_deleting_forgets_credentials_and_tokens_and_remembers_the_user(accounts: AccountStore) -> None:
    await accounts.create_account("u1", "h")
    await accounts.add_refresh_token(token("a"))
    assert not await accounts.is_deleted("u1")
    await accounts.delete_account("u1")
    await accounts.delete_account("u1")  # idempotent
    await accounts.delete_account("guest-without-account")
    assert await accounts.get_account("u1") is None
    assert await accounts.is_deleted("u1") and await accounts.is_deleted("guest-without-account")
    assert (await accounts.redeem_refresh_token("hash-a", now_ms())).outcome is Redemption.UNKNOWN


async def test_a_refresh_token_is_redeemed_once(accounts: AccountStore) -> None:
    stored = token("a")
    await accounts.add_refresh_token(stored)
    first = await accounts.redeem_refresh_token("hash-a", now_ms())
    assert first.outcome is Redemption.OK and first.token == stored
    again = await accounts.redeem_refresh_token("hash-a", now_ms())
    assert again.outcome is Redemption.REUSED and again.token == stored
    assert (await accounts.redeem_refresh_token("hash-nope", now_ms())).outcome is Redemption.UNKNOWN


async def test_concurrent_redemptions_let_exactly_one_through(accounts: AccountStore) -> None:
    await accounts.add_refresh_token(token("a"))
    outcomes = await asyncio.gather(*(accounts.redeem_refresh_token("hash-a", now_ms()) for _ in range(8)))
    assert sorted(o.outcome.value for o in outcomes) == ["ok"] + ["reused"] * 7


async def test_expired_tokens_are_refused_and_left_alone(accounts: AccountStore) -> None:
    await accounts.add_refresh_token(token("old", ttl_ms=1_000))
    later = now_ms() + 5_000
    assert (await accounts.redeem_refresh_token("hash-old", later)).outcome is Redemption.EXPIRED
    assert (await accounts.redeem_refresh_token("hash-old", later)).outcome is Redemption.EXPIRED


async def test_revoking_a_family_or_a_user(accounts: AccountStore) -> None:
    for name, family, user in [("a", "f1", "u1"), ("b", "f1", "u1"), ("c", "f2", "u1"), ("d", "f3", "u2")]:
        await accounts.add_refresh_token(token(name, family, user))
    await accounts.redeem_refresh_token("hash-a", now_ms())
    assert await accounts.revoke_family("f1") == 1  # "a" was used already
    assert (await accounts.redeem_refresh_token("hash-b", now_ms())).outcome is Redemption.REVOKED
    assert (await accounts.redeem_refresh_token("hash-a", now_ms())).outcome is Redemption.REVOKED
    assert (await accounts.redeem_refresh_token("hash-c", now_ms())).outcome is Redemption.OK
    assert await accounts.revoke_user("u2") == 1
    assert (await accounts.redeem_refresh_token("hash-d", now_ms())).outcome is Redemption.REVOKED
    assert await accounts.revoke_family("nothing") == 0
    assert [await accounts.is_revoked(family) for family in ("f1", "f2", "f3")] == [True, False, True]
    assert not await accounts.is_revoked("nothing")
    # A token added to a revoked session (a refresh racing the revocation) does not bring it back.
    await accounts.add_refresh_token(token("e", "f1", "u1"))
    assert await accounts.is_revoked("f1")
