"""Accounts on their own: registration, login, rotating refresh tokens, guests and deletion, on the memory
stores (argon2id at its smallest cost), no server."""

from __future__ import annotations

import pytest

from chatio import errors
from chatio.accounts.identity import Identity
from chatio.accounts.service import AccountService
from chatio.accounts.tokens import AccessTokens
from chatio.config import Settings
from chatio.errors import ChatError
from chatio.store.accounts_memory import MemoryAccountStore
from chatio.store.memory import MemoryStore
from tests.accounts_helpers import PASSWORD, fast_passwords

pytestmark = pytest.mark.unit


def service(**settings: object) -> AccountService:
    return AccountService(
        Settings(pod_name="t", **settings),  # type: ignore[arg-type]
        MemoryStore(),
        MemoryAccountStore(),
        fast_passwords(),
        AccessTokens("s" * 32, 60.0),
    )


async def code_of(call: object) -> str:
    with pytest.raises(ChatError) as refused:
        await call  # type: ignore[misc]
    return refused.value.code


async def test_register_then_login_gives_an_identity_with_a_session() -> None:
    accounts = service()
    user = await accounts.register("alice", PASSWORD, "Alice", "alice@example.org")
    grant = await accounts.login("alice", PASSWORD)
    identity = await accounts.identify(grant.access_token)
    assert identity.user_id == user.id and identity.username == "alice" and not identity.guest
    assert identity.session is not None and identity.expires_at is not None
    assert await code_of(accounts.register("alice", PASSWORD, "Other", None)) == errors.CONFLICT


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer() -> None:
    accounts = service()
    await accounts.register("alice", PASSWORD, "Alice", None)
    with pytest.raises(ChatError) as wrong:
        await accounts.login("alice", "not the password")
    with pytest.raises(ChatError) as unknown:
        await accounts.login("nobody", PASSWORD)
    assert (wrong.value.code, wrong.value.message) == (unknown.value.code, unknown.value.message)


async def test_a_refresh_token_rotates_and_a_reused_one_revokes_the_session() -> None:
    accounts = service()
    ended: list[str] = []

    async def record(session: str) -> None:
        ended.append(session)

    accounts.on_session_ended.append(record)
    await accounts.register("alice", PASSWORD, "Alice", None)
    first = await accounts.login("alice", PASSWORD)
    second = await accounts.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert await code_of(accounts.refresh(first.refresh_token)) == errors.UNAUTHORIZED
    assert ended == [accounts.tokens.verify(second.access_token).session]
    assert await code_of(accounts.refresh(second.refresh_token)) == errors.UNAUTHORIZED
    # Every access token of the revoked session is refused from now on.
    for access in (first.access_token, second.access_token):
        assert await code_of(accounts.identify(access)) == errors.UNAUTHORIZED


async def test_logout_ends_the_session_whichever_token_is_shown() -> None:
    accounts = service()
    await accounts.register("alice", PASSWORD, "Alice", None)
    grant = await accounts.login("alice", PASSWORD)
    await accounts.logout(grant.refresh_token)
    assert await code_of(accounts.refresh(grant.refresh_token)) == errors.UNAUTHORIZED
    assert await code_of(accounts.identify(grant.access_token)) == errors.UNAUTHORIZED
    assert await code_of(accounts.logout("made-up")) == errors.UNAUTHORIZED


async def test_guests_only_where_allowed_and_never_as_a_registered_name() -> None:
    accounts = service()
    await accounts.register("alice", PASSWORD, "Alice", None)
    guest = await accounts.guest_grant("bob")
    assert (await accounts.identify(guest.access_token)).guest
    assert await code_of(accounts.guest("alice")) == errors.UNAUTHORIZED
    assert await code_of(service(allow_guests=False).guest("bob")) == errors.FORBIDDEN


async def test_only_the_user_or_an_admin_deletes_and_a_deleted_user_is_gone() -> None:
    accounts = service()
    gone: list[str] = []

    async def record(user_id: str) -> None:
        gone.append(user_id)

    accounts.on_deleted.append(record)
    alice = await accounts.register("alice", PASSWORD, "Alice", None)
    bob = await accounts.register("bob", PASSWORD, "Bob", None)
    grant = await accounts.login("alice", PASSWORD)
    as_bob = Identity(bob.id, "bob", guest=False)
    assert await code_of(accounts.delete(as_bob, alice.id)) == errors.FORBIDDEN
    await accounts.delete(Identity("root", "root", guest=False, admin=True), alice.id)
    assert gone == [alice.id]
    assert await code_of(accounts.profile(alice.id)) == errors.NOT_FOUND
    assert await code_of(accounts.identify(grant.access_token)) == errors.UNAUTHORIZED
    assert await code_of(accounts.login("alice", PASSWORD)) == errors.UNAUTHORIZED
