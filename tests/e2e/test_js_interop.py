"""The official JavaScript socket.io-client against real chatio processes: the protocol basics
(tests/js/interop.mjs) and the message features (tests/js/features.mjs), on one process as ``make run``
serves and on two processes sharing Redis and MongoDB as ``make cluster`` does."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.prereqs import JS_DIR, node_binary, require_npm_package
from tests.procs import ServerProcess, describe_run, run_bounded, start_server

pytestmark = pytest.mark.node

SCRIPT_TIMEOUT_SECONDS = 60.0


@pytest.mark.parametrize("compression", ["false", "true"])
def test_socketio_client_interop(compression: str) -> None:
    """Also with per-message deflate, which the npm client (the ``ws`` package under Node) offers."""
    node = node_binary()
    require_npm_package("socket.io-client")
    with start_server({"CHATIO_WEBSOCKET_COMPRESSION": compression}) as server:
        try:
            result = run_bounded(
                [node, "interop.mjs", server.url], cwd=JS_DIR, timeout=SCRIPT_TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired as expired:
            pytest.fail(
                f"interop.mjs ran longer than {SCRIPT_TIMEOUT_SECONDS:g} s\n{describe_run(expired, server)}"
            )
        assert result.returncode == 0, (
            f"interop.mjs exited with {result.returncode}\n{describe_run(result, server)}"
        )
        assert "passed: all" in result.stdout, describe_run(result, server)


def run_features(servers: list[ServerProcess]) -> None:
    result = run_bounded(
        [node_binary(), "features.mjs", *(server.url for server in servers)],
        cwd=JS_DIR,
        timeout=SCRIPT_TIMEOUT_SECONDS,
    )
    shown = describe_run(result, servers[0])
    assert result.returncode == 0 and "passed: all" in result.stdout, shown


def test_message_features_from_the_npm_client_on_make_run_defaults() -> None:
    require_npm_package("socket.io-client")
    with start_server({}) as server:
        run_features([server])


@pytest.mark.redis
@pytest.mark.mongo
def test_message_features_from_the_npm_client_across_two_processes(
    redis_url: str, mongodb_uri: str, mongodb_database: str
) -> None:
    require_npm_package("socket.io-client")
    env = {
        "CHATIO_REDIS_URL": redis_url,
        "CHATIO_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        "CHATIO_MONGODB_URI": mongodb_uri,
        "CHATIO_MONGODB_DATABASE": mongodb_database,
    }
    with (
        start_server({**env, "CHATIO_POD_NAME": "js-1"}) as one,
        start_server({**env, "CHATIO_POD_NAME": "js-2"}) as two,
    ):
        run_features([one, two])
