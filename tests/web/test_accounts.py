"""Accounts over REST: registration, login, users seen and deleted only by whom they should be."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from chatio.config import Secret, Settings
from chatio.store.accounts_memory import MemoryAccountStore
from tests.accounts_helpers import PASSWORD, bearer, call, fast_passwords, refusal, register, signed_up
from tests.harness import RunningServer, connect, serving

SETTINGS = Settings(pod_name="t", allow_guests=True, jwt_secret=Secret("j" * 40))


@pytest.fixture
def accounts() -> MemoryAccountStore:
    return MemoryAccountStore()


@pytest.fixture
async def server(accounts: MemoryAccountStore) -> AsyncIterator[RunningServer]:
    async with serving(SETTINGS, passwords=fast_passwords(), accounts=accounts) as running:
        yield running


async def test_login_does_not_tell_which_part_was_wrong(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    await register(http, server.url, "alice")
    login = f"{server.url}/api/chat/auth/login"
    answers = [
        await call(http, "POST", login, json={"username": "alice", "password": "wrong password"}),
        await call(http, "POST", login, json={"username": "nobody", "password": PASSWORD}),
    ]
    assert [status for status, _ in answers] == [401, 401]
    assert (
        answers[0][1]
        == answers[1][1]
        == {"error": {"code": "unauthorized", "message": "wrong username or password"}}
    )
    status, grant = await call(http, "POST", login, json={"username": "alice", "password": PASSWORD})
    assert status == 200 and grant["tokenType"] == "Bearer" and 0 < grant["expiresIn"] <= 900
    assert grant["refreshExpiresAt"] > grant["expiresAt"]


async def test_guests_cannot_log_in_and_registered_names_are_not_for_guests(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    guest = await connect(server.url, "gus")
    await guest.sio.disconnect()
    login = {"username": "gus", "password": PASSWORD}
    assert (await call(http, "POST", f"{server.url}/api/chat/auth/login", json=login))[0] == 401
    status, taken = await call(http, "POST", f"{server.url}/api/chat/users", json=login)
    assert status == 409 and taken["error"]["field"] == "username"


async def test_rest_needs_a_valid_bearer_token(server: RunningServer, http: aiohttp.ClientSession) -> None:
    grant = await signed_up(http, server.url, "alice")
    url = f"{server.url}/api/chat/users/{grant['user']['id']}"
    for headers in [{}, {"Authorization": "Basic YWxpY2U6eA=="}, bearer("forged.token.here")]:
        async with http.get(url, headers=headers) as response:
            assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await response.json())["error"]["code"] == "unauthorized"
    assert (await call(http, "GET", url, headers=bearer(grant["accessToken"])))[0] == 200


async def test_email_is_shown_to_its_owner_only(server: RunningServer, http: aiohttp.ClientSession) -> None:
    body = {"username": "alice", "password": PASSWORD, "email": "alice@example.com"}
    _, alice = await call(http, "POST", f"{server.url}/api/chat/users", json=body)
    mine = await call(
        http, "POST", f"{server.url}/api/chat/auth/login", json={"username": "alice", "password": PASSWORD}
    )
    bob = await signed_up(http, server.url, "bob")
    url = f"{server.url}/api/chat/users/{alice['id']}"
    assert (await call(http, "GET", url, headers=bearer(mine[1]["accessToken"])))[1][
        "email"
    ] == "alice@example.com"
    assert (await call(http, "GET", url, headers=bearer(bob["accessToken"])))[1]["email"] is None


async def test_only_the_user_or_an_admin_deletes_and_their_sockets_close(
    server: RunningServer, http: aiohttp.ClientSession, accounts: MemoryAccountStore
) -> None:
    alice, bob, admin = [await signed_up(http, server.url, name) for name in ("alice", "bob", "root")]
    assert await accounts.set_admin(admin["user"]["id"], True)
    users = f"{server.url}/api/chat/users"
    status, refused = await call(
        http, "DELETE", f"{users}/{bob['user']['id']}", headers=bearer(alice["accessToken"])
    )
    assert status == 403 and refused["error"]["code"] == "forbidden"

    bob_socket = await connect(server.url, auth={"token": bob["accessToken"]})
    alice_socket = await connect(server.url, auth={"token": alice["accessToken"]})
    try:
        status, _ = await call(
            http, "DELETE", f"{users}/{bob['user']['id']}", headers=bearer(admin["accessToken"])
        )
        assert status == 200
        assert (await bob_socket.expect("disconnect_reason"))["code"] == "account_deleted"
        status, _ = await call(
            http, "DELETE", f"{users}/{alice['user']['id']}", headers=bearer(alice["accessToken"])
        )
        assert status == 200
        assert (await alice_socket.expect("disconnect_reason"))["code"] == "account_deleted"
    finally:
        await bob_socket.sio.disconnect()
        await alice_socket.sio.disconnect()

    for gone in (alice, bob):
        name, token = gone["user"]["username"], gone["accessToken"]
        status, _ = await call(
            http, "GET", f"{users}/{gone['user']['id']}", headers=bearer(admin["accessToken"])
        )
        assert status == 404
        assert (await call(http, "GET", f"{users}/{gone['user']['id']}", headers=bearer(token)))[0] == 401
        assert "no longer exists" in (await refusal(server.url, {"token": token}))["message"]
        login = {"username": name, "password": PASSWORD}
        assert (await call(http, "POST", f"{server.url}/api/chat/auth/login", json=login))[0] == 401
        body = {"refreshToken": gone["refreshToken"]}
        assert (await call(http, "POST", f"{server.url}/api/chat/auth/refresh", json=body))[0] == 401
        # The name stays taken: nobody may post as a deleted user, neither registered nor as a guest.
        assert (await call(http, "POST", users, json=login))[0] == 409
        assert "registered" in (await refusal(server.url, {"username": name}))["message"]


async def test_a_deleted_guest_stays_deleted(server: RunningServer, http: aiohttp.ClientSession) -> None:
    status, guest = await call(http, "POST", f"{server.url}/api/chat/auth/guest", json={"username": "gus"})
    assert status == 200
    url = f"{server.url}/api/chat/users/{guest['user']['id']}"
    assert (await call(http, "DELETE", url, headers=bearer(guest["accessToken"])))[0] == 200
    assert "deleted" in (await refusal(server.url, {"username": "gus"}))["message"]
    assert "deleted" in (await refusal(server.url, {"token": guest["accessToken"]}))["message"]
