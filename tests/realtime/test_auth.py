"""Socket authentication: tokens at connect, refused credentials with a reason, guests only when allowed,
an identity no payload can change, and connections that end with their token or their session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from chatio.config import Secret, Settings
from tests.accounts.test_tokens import unsigned
from tests.accounts_helpers import bearer, call, fast_passwords, login, refusal, register, sign, signed_up
from tests.harness import Client, RunningServer, connect, serving

SECRET = "k" * 48


def settings(**changes: Any) -> Settings:
    return Settings(**{"pod_name": "t", "allow_guests": False, "jwt_secret": Secret(SECRET), **changes})


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serving(settings(), passwords=fast_passwords()) as running:
        yield running


async def disconnected(client: Client, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if not client.sio.connected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the client is still connected")


async def test_a_token_connects_as_its_user(server: RunningServer, http: aiohttp.ClientSession) -> None:
    grant = await signed_up(http, server.url, "alice")
    alice = await connect(server.url, auth={"token": grant["accessToken"]})
    try:
        session = await alice.expect("session")
        assert (session["user"], session["userId"], session["guest"]) == (
            "alice",
            grant["user"]["id"],
            False,
        )
        assert session["expiresAt"] == grant["expiresAt"]
        assert (await alice.join("lobby"))["room"]["id"] == "lobby"
    finally:
        await alice.sio.disconnect()


async def test_refused_credentials_get_a_reason_and_a_code(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    user = await register(http, server.url, "alice")
    uid = user["id"]
    cases: list[tuple[Any, str, str]] = [
        (None, "unauthorized", "authentication required"),
        ({}, "unauthorized", "authentication required"),
        ({"username": "alice"}, "unauthorized", "does not allow guests"),
        ({"token": ""}, "invalid_payload", "auth.token"),
        (
            {"token": sign("a forged key, not the server's " * 2, uid, "alice", expires_in=60)},
            "unauthorized",
            "bad signature",
        ),
        ({"token": sign(SECRET, uid, "alice", expires_in=-5)}, "token_expired", "token expired"),
        (
            {"token": unsigned({"sub": uid, "name": "alice", "iat": 1, "exp": 2**40})},
            "unauthorized",
            "'none'",
        ),
        ({"token": "garbage"}, "unauthorized", "not a JWT"),
        ({"token": sign(SECRET, "0" * 24, "ghost", expires_in=60)}, "unauthorized", "no longer exists"),
    ]
    for auth, code, reason in cases:
        refused = await refusal(server.url, auth)
        assert refused["data"]["code"] == code and reason in refused["message"], (auth, refused)


async def test_no_payload_can_change_who_you_are(server: RunningServer, http: aiohttp.ClientSession) -> None:
    alice_grant = await signed_up(http, server.url, "alice")
    bob_grant = await signed_up(http, server.url, "bob")
    spoof = {"token": bob_grant["accessToken"], "userId": alice_grant["user"]["id"]}
    assert (await refusal(server.url, spoof))["data"]["code"] == "invalid_payload"
    bob = await connect(server.url, auth={"token": bob_grant["accessToken"]})
    alice = await connect(server.url, auth={"token": alice_grant["accessToken"]})
    try:
        await bob.join("r")
        await alice.join("r")
        for field, value in [("userId", alice_grant["user"]["id"]), ("user", "alice")]:
            ack = await bob.call("send_message", {"room": "r", "text": "I am alice", field: value})
            assert ack["error"] == {**ack["error"], "code": "invalid_payload", "field": field}
        assert (await bob.call("send_message", {"room": "r", "text": "hi"}))["ok"]
        seen = await alice.expect("message")
        assert (seen["user"], seen["userId"]) == ("bob", bob_grant["user"]["id"])
    finally:
        await bob.sio.disconnect()
        await alice.sio.disconnect()


async def test_guests_only_where_allowed_and_never_under_a_registered_name(
    http: aiohttp.ClientSession,
) -> None:
    async with serving(settings(allow_guests=True), passwords=fast_passwords()) as server:
        await register(http, server.url, "alice")
        refused = await refusal(server.url, {"username": "alice"})
        assert "registered" in refused["message"]
        status, body = await call(
            http, "POST", f"{server.url}/api/chat/auth/guest", json={"username": "alice"}
        )
        assert status == 401 and "registered" in body["error"]["message"]
        status, guest = await call(
            http, "POST", f"{server.url}/api/chat/auth/guest", json={"username": "gus"}
        )
        assert status == 200 and guest["user"]["guest"] and "refreshToken" not in guest
        status, _rooms = await call(
            http, "GET", f"{server.url}/api/chat/rooms/public", headers=bearer(guest["accessToken"])
        )
        assert status == 200
        gus = await connect(server.url, auth={"token": guest["accessToken"]})
        assert (await gus.expect("session"))["guest"] is True
        await gus.sio.disconnect()
        guest_token = guest["accessToken"]
    async with serving(settings(), passwords=fast_passwords()) as locked:
        # The same key signs, but this server admits no guests: neither bare names nor guest tokens.
        assert "does not allow guests" in (await refusal(locked.url, {"token": guest_token}))["message"]
        status, body = await call(http, "POST", f"{locked.url}/api/chat/auth/guest", json={"username": "gus"})
        assert status == 403 and body["error"]["code"] == "forbidden"


async def test_an_expiring_token_ends_the_connection_unless_refreshed(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    grant = await signed_up(http, server.url, "alice")
    other = await signed_up(http, server.url, "mallory")
    uid = grant["user"]["id"]
    # JWT expiry is in whole seconds: a lifetime of 3 leaves 2 to 3 s for the refreshes below (1 left 0 to 1).
    lapsing = await connect(server.url, auth={"token": sign(SECRET, uid, "alice", expires_in=3)})
    renewed = await connect(server.url, auth={"token": sign(SECRET, uid, "alice", expires_in=3)})
    try:
        stolen = await renewed.call("refresh_session", {"token": other["accessToken"]})
        assert stolen["error"]["code"] == "forbidden"
        assert (await renewed.call("refresh_session", {"token": "garbage"}))["error"][
            "code"
        ] == "unauthorized"
        ack = await renewed.call("refresh_session", {"token": grant["accessToken"]})
        assert ack == {"ok": True, "expiresAt": grant["expiresAt"]}
        reason = await lapsing.expect("disconnect_reason", timeout=6)
        assert reason["code"] == "token_expired"
        await disconnected(lapsing)
        await asyncio.sleep(0.5)
        assert renewed.sio.connected and (await renewed.join("still-here"))["ok"]
    finally:
        await lapsing.sio.disconnect()
        await renewed.sio.disconnect()


async def test_a_reused_refresh_token_revokes_the_session_and_closes_its_sockets(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    grant = await signed_up(http, server.url, "alice")
    elsewhere = await signed_up(http, server.url, "alice-2")
    refresh = f"{server.url}/api/chat/auth/refresh"
    alice = await connect(server.url, auth={"token": grant["accessToken"]})
    bystander = await connect(server.url, auth={"token": elsewhere["accessToken"]})
    try:
        status, rotated = await call(http, "POST", refresh, json={"refreshToken": grant["refreshToken"]})
        assert status == 200 and rotated["refreshToken"] != grant["refreshToken"]
        # The stolen copy of the first token is played back: the whole session goes.
        status, reused = await call(http, "POST", refresh, json={"refreshToken": grant["refreshToken"]})
        assert status == 401 and "reused" in reused["error"]["message"]
        status, _ = await call(http, "POST", refresh, json={"refreshToken": rotated["refreshToken"]})
        assert status == 401
        assert (await alice.expect("disconnect_reason"))["code"] == "session_ended"
        await disconnected(alice)
        await bystander.nothing("disconnect_reason")
        assert bystander.sio.connected
        # Neither the access token of the revoked session nor its rotated one opens a socket again.
        for token in (grant["accessToken"], rotated["accessToken"]):
            refused = await refusal(server.url, {"token": token})
            assert refused["data"]["code"] == "unauthorized" and "revoked" in refused["message"], refused
            status, _ = await call(http, "GET", f"{server.url}/api/chat/dms", headers=bearer(token))
            assert status == 401
    finally:
        await alice.sio.disconnect()
        await bystander.sio.disconnect()


async def test_logout_ends_the_session(server: RunningServer, http: aiohttp.ClientSession) -> None:
    grant = await signed_up(http, server.url, "alice")
    alice = await connect(server.url, auth={"token": grant["accessToken"]})
    try:
        body = {"refreshToken": grant["refreshToken"]}
        status, _ = await call(http, "POST", f"{server.url}/api/chat/auth/logout", json=body)
        assert status == 200
        assert (await alice.expect("disconnect_reason"))["code"] == "session_ended"
        status, refused = await call(http, "POST", f"{server.url}/api/chat/auth/refresh", json=body)
        assert status == 401 and "logged out" in refused["error"]["message"]
        assert (await refusal(server.url, {"token": grant["accessToken"]}))["data"]["code"] == "unauthorized"
        again = await connect(
            server.url, auth={"token": (await login(http, server.url, "alice"))["accessToken"]}
        )
        await again.sio.disconnect()
    finally:
        await alice.sio.disconnect()
