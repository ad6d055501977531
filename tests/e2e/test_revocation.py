"""Revocation reaches sockets on every process: real ``python -m chatio`` processes sharing a real mongod.

A session logged out, or revoked because its refresh token was played twice, on one process opens no new
socket and answers no REST call with any of its access tokens, on that process or any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from tests.accounts_helpers import bearer, call, login, refusal, signed_up
from tests.harness import connect
from tests.procs import ServerProcess, start_server

pytestmark = pytest.mark.mongo


@pytest.fixture
def pods(mongodb_uri: str, mongodb_database: str) -> Iterator[list[ServerProcess]]:
    env = {
        "CHATIO_MONGODB_URI": mongodb_uri,
        "CHATIO_MONGODB_DATABASE": mongodb_database,
        "CHATIO_ALLOW_GUESTS": "false",
        "CHATIO_JWT_SECRET": "revocation-test-" + "k" * 32,
    }
    started = [start_server({**env, "CHATIO_POD_NAME": name}) for name in ("pod-1", "pod-2")]
    try:
        yield started
    finally:
        for server in started:
            server.stop()


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
