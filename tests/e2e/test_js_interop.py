"""The official JavaScript socket.io-client against a real chatio process (tests/js/interop.mjs)."""

from __future__ import annotations

import subprocess

import pytest

from tests.prereqs import JS_DIR, node_binary, require_npm_package
from tests.procs import describe_run, run_bounded, start_server

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
