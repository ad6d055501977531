"""Revocation reaches sockets on every process: real ``python -m chatio`` processes sharing a real mongod
(and a real redis-server, for the connections already open).

A session logged out, or revoked because its refresh token was played twice, on one process opens no new
socket and answers no REST call with any of its access tokens, on that process or any other. With Redis,
its connections open on another process close at once (Socket.IO and ``/ws/chat`` alike), and so do a
deleted account's; a ``/ws/chat`` connection there ends with its token too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import aiohttp
import pytest

from tests.accounts_helpers import bearer, call, login, refusal, sign, signed_up
from tests.harness import closed_with, connect
from tests.procs import ServerProcess, start_server

pytestmark = pytest.mark.mongo

SECRET = "revocation-test-" + "k" * 32
TIMEOUT = 10.0


def two_pods(env: dict[str, str]) -> Iterator[list[ServerProcess]]:
    env = {**env, "CHATIO_ALLOW_GUESTS": "false", "CHATIO_JWT_SECRET": SECRET}
    started = [start_server({**env, "CHATIO_POD_NAME": name}) for name in ("pod-1", "pod-2")]
    try:
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def pods(mongodb_uri: str, mongodb_database: str) -> Iterator[list[ServerProcess]]:
    yield from two_pods({"CHATIO_MONGODB_URI": mongodb_uri, "CHATIO_MONGODB_DATABASE": mongodb_database})


@pytest.fixture
def redis_pods(redis_url: str, mongodb_uri: str, mongodb_database: str) -> Iterator[list[ServerProcess]]:
    yield from two_pods(
        {
            "CHATIO_MONGODB_URI": mongodb_uri,
            "CHATIO_MONGODB_DATABASE": mongodb_database,
            "CHATIO_REDIS_URL": redis_url,
            "CHATIO_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        }
    )


def plain_url(pod: ServerProcess, token: str) -> str:
    return pod.url.replace("http://", "ws://") + f"/ws/chat?token={token}"


async def entered(ws: aiohttp.ClientWebSocketResponse, room: str) -> None:
    await ws.send_json({"type": "ENTER", "roomId": room})
    answer = await asyncio.wait_for(ws.receive_json(), TIMEOUT)
    assert answer["type"] == "ENTER", answer


async def refused_everywhere(http: aiohttp.ClientSession, pods: list[ServerProcess], token: str) -> None:
    for pod in pods:
        refused = await refusal(pod.url, {"token": token})
        assert refused["data"]["code"] == "unauthorized", refused
        status, body = await call(http, "GET", f"{pod.url}/api/chat/dms", headers=bearer(token))
        assert status == 401, body


async def test_a_logged_out_session_opens_no_socket_on_any_process(pods: list[ServerProcess]) -> None:
    one, two = pods
    async with aiohttp.ClientSession() as http:
        grant = await signed_up(http, one.url, "alice")
        other = await login(http, two.url, "alice")  # a second session of the same user
        alice = await connect(two.url, auth={"token": grant["accessToken"]})
        await alice.sio.disconnect()
        status, _ = await call(
            http, "POST", f"{one.url}/api/chat/auth/logout", json={"refreshToken": grant["refreshToken"]}
        )
        assert status == 200
        await refused_everywhere(http, pods, grant["accessToken"])
        # The user's other session is untouched.
        still = await connect(two.url, auth={"token": other["accessToken"]})
        assert (await still.join("lobby"))["ok"]
        await still.sio.disconnect()


async def test_a_revoked_session_opens_no_socket_with_any_of_its_tokens(pods: list[ServerProcess]) -> None:
    one, two = pods
    async with aiohttp.ClientSession() as http:
        grant = await signed_up(http, one.url, "bob")
        refresh = "/api/chat/auth/refresh"
        status, rotated = await call(
            http, "POST", two.url + refresh, json={"refreshToken": grant["refreshToken"]}
        )
        assert status == 200
        status, _ = await call(http, "POST", one.url + refresh, json={"refreshToken": grant["refreshToken"]})
        assert status == 401
        await asyncio.gather(
            *(refused_everywhere(http, pods, t) for t in (grant["accessToken"], rotated["accessToken"]))
        )


@pytest.mark.redis
async def test_an_ended_session_or_account_closes_its_connections_on_every_process(
    redis_pods: list[ServerProcess], http: aiohttp.ClientSession
) -> None:
    one, two = redis_pods
    grant = await signed_up(http, one.url, "carol")
    kept = await login(http, two.url, "carol")  # a second session of the same user
    leaving = await signed_up(http, one.url, "dave")
    sio = await connect(two.url, auth={"token": grant["accessToken"]})
    async with (
        http.ws_connect(plain_url(two, grant["accessToken"])) as ended,
        http.ws_connect(plain_url(two, kept["accessToken"])) as other_session,
        http.ws_connect(plain_url(two, leaving["accessToken"])) as deleted,
    ):
        for ws in (ended, other_session, deleted):
            await entered(ws, "lobby")
        body = {"refreshToken": grant["refreshToken"]}
        status, _ = await call(http, "POST", f"{one.url}/api/chat/auth/logout", json=body)
        assert status == 200
        assert await closed_with(ended) == (1008, "session_ended: you were logged out; log in again")
        assert (await sio.expect("disconnect_reason", timeout=TIMEOUT))["code"] == "session_ended"

        url = f"{one.url}/api/chat/users/{leaving['user']['id']}"
        status, _ = await call(http, "DELETE", url, headers=bearer(leaving["accessToken"]))
        assert status == 200
        assert await closed_with(deleted) == (1008, "account_deleted: your account was deleted")

        await entered(other_session, "still-here")
    await sio.sio.disconnect()


@pytest.mark.redis
async def test_a_plain_connection_on_another_process_ends_with_its_token(
    redis_pods: list[ServerProcess], http: aiohttp.ClientSession
) -> None:
    one, two = redis_pods
    grant = await signed_up(http, one.url, "erin")
    # JWT expiry is in whole seconds: a lifetime of 3 is 2 to 3 s from now.
    token = sign(SECRET, grant["user"]["id"], "erin", expires_in=3)
    async with http.ws_connect(plain_url(two, token)) as lapsing:
        await entered(lapsing, "lobby")
        code, reason = await closed_with(lapsing)
        assert code == 1008 and reason.startswith("token_expired: "), reason
