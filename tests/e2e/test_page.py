"""The web page in Debian's Chromium (playwright-core), against real chatio processes.

``tests/js/page.mjs``: two guests on one process (typing, presence, long-polling then the upgrade to a
WebSocket, a third guest on long-polling alone, links, the length counter, catch-up after a network drop
and its reset path, XSS as text, 360 px). ``tests/js/page_accounts.mjs``: two
registered users on two processes behind HAProxy with Redis and MongoDB (private room, invitations, a DM,
search, history, reload, token renewal, a SIGKILL of the serving process, screenshots light and dark, an
account deleted). ``tests/js/page_admin.mjs``: the account, server, room settings and moderation panels on
one process with the embedded defaults, as ``make run`` serves them.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import uuid
from pathlib import Path

import aiohttp
import pytest

from chatio.store.accounts_mongo import MongoAccountStore
from chatio.store.mongo_base import mongo_client
from tests.accounts_helpers import register
from tests.cluster_harness import start_pods
from tests.prereqs import JS_DIR, node_binary, require, require_chromium, require_npm_package
from tests.procs import ServerProcess, describe_run, run_bounded, start_server
from tools.devcluster import Balancer, find_haproxy, render_haproxy_config
from tools.devservices import free_port

SCRIPT_TIMEOUT_SECONDS = 180.0
ACCOUNTS_TIMEOUT_SECONDS = 300.0
# Small enough that page.mjs can miss more than CATCHUP_MAX messages and see join_room's `reset: true`.
CATCHUP_MAX = 4
SERVER_ENV = {"CHATIO_CATCHUP_MAX": str(CATCHUP_MAX), "CHATIO_HISTORY_PAGE_SIZE": "5"}


def _browser_prerequisites() -> str:
    node = node_binary()
    require_npm_package("playwright-core")
    require_chromium()
    return node


async def _administrator(url: str, mongodb_uri: str, database: str) -> str:
    """Register a user (the scripts' password) and make them a server administrator, as an operator does:
    ``admin: true`` on their account document. Returns the username."""
    username = f"root-{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession() as http:
        user = await register(http, url, username, "correct horse battery")
    client = mongo_client(mongodb_uri, timeout_seconds=5.0)
    try:
        assert await MongoAccountStore(client, database).set_admin(user["id"], True)
    finally:
        await client.close()
    return username


def _run_script(command: list[str], timeout: float, servers: list[ServerProcess]) -> None:
    def described(run: subprocess.CompletedProcess[str] | subprocess.TimeoutExpired) -> str:
        return "\n".join(
            [describe_run(run, servers[0]), *(server.output()[-3000:] for server in servers[1:])]
        )

    try:
        result = run_bounded(command, cwd=JS_DIR, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"{command[1]} ran longer than {timeout:g} s\n{described(expired)}")
    assert result.returncode == 0, f"{command[1]} exited with {result.returncode}\n{described(result)}"


@pytest.mark.node
@pytest.mark.browser
@pytest.mark.parametrize("compression", ["false", "true"])
def test_page_two_guests(tmp_path: Path, compression: str) -> None:
    """Also with per-message deflate, which Chromium offers."""
    node = _browser_prerequisites()
    shots = tmp_path / "screenshots"
    with start_server(SERVER_ENV | {"CHATIO_WEBSOCKET_COMPRESSION": compression}) as server:
        command = [node, "page.mjs", server.url, str(shots), "--catchup-max", str(CATCHUP_MAX)]
        _run_script(command, SCRIPT_TIMEOUT_SECONDS, [server])
    assert (shots / "two-tabs.png").stat().st_size > 10_000


@pytest.mark.node
@pytest.mark.browser
def test_page_panels_with_the_embedded_defaults(tmp_path: Path) -> None:
    node = _browser_prerequisites()
    shots = tmp_path / "screenshots"
    with start_server({}) as server:
        _run_script([node, "page_admin.mjs", server.url, str(shots)], SCRIPT_TIMEOUT_SECONDS, [server])
    assert (shots / "phones-moderation.png").stat().st_size > 10_000


@pytest.mark.node
@pytest.mark.browser
@pytest.mark.redis
@pytest.mark.mongo
def test_page_accounts_on_two_processes(
    tmp_path: Path, redis_url: str, mongodb_uri: str, mongodb_database: str
) -> None:
    node = _browser_prerequisites()
    haproxy = find_haproxy()
    require(haproxy is not None, "haproxy is not installed (make deps-system)")
    env = {
        "CHATIO_REDIS_URL": redis_url,
        "CHATIO_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        "CHATIO_MONGODB_URI": mongodb_uri,
        "CHATIO_MONGODB_DATABASE": mongodb_database,
        "CHATIO_JWT_SECRET": secrets.token_urlsafe(48),
        "CHATIO_ALLOW_GUESTS": "false",
        "CHATIO_TRUSTED_PROXY_HOPS": "1",
        "CHATIO_PRESENCE_HEARTBEAT_SECONDS": "1",
        # The page reads these from GET /api/chat/config; nothing is hard-coded there.
        "CHATIO_HISTORY_PAGE_SIZE": "5",
        "CHATIO_MESSAGE_MAX_LENGTH": "300",
        # Short enough that the run outlives a token: the page must renew it (refresh_session).
        "CHATIO_ACCESS_TOKEN_TTL_SECONDS": "20",
        "CHATIO_AUTH_RATE_PER_MINUTE": "1000",
        "CHATIO_RATE_LIMIT_PER_MINUTE": "1000",
    }
    servers = start_pods(["pod-1", "pod-2"], env)
    balancer = None
    try:
        port = free_port()
        backends = [(f"pod-{i}", f"127.0.0.1:{server.port}") for i, server in enumerate(servers, 1)]
        config = render_haproxy_config(f"127.0.0.1:{port}", backends, f"127.0.0.1:{free_port()}")
        balancer = Balancer(config, tmp_path / "haproxy", port, binary=haproxy)
        balancer.start()
        shots = tmp_path / "screenshots"
        pods = ",".join(f"pod-{i}={server.pid}" for i, server in enumerate(servers, 1))
        admin = asyncio.run(_administrator(balancer.url, mongodb_uri, mongodb_database))
        command = [node, "page_accounts.mjs", balancer.url, str(shots), "--pods", pods, "--admin", admin]
        _run_script(command, ACCOUNTS_TIMEOUT_SECONDS, servers)
    finally:
        if balancer is not None:
            balancer.stop()
        for server in servers:
            server.stop()
    assert (shots / "phones.png").stat().st_size > 10_000
