"""The web test page in Debian's Chromium, two users against a real chatio process (tests/js/page.mjs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.prereqs import JS_DIR, node_binary, require_chromium, require_npm_package
from tests.procs import describe_run, run_bounded, start_server

pytestmark = [pytest.mark.node, pytest.mark.browser]

SCRIPT_TIMEOUT_SECONDS = 75.0
# Small enough that page.mjs can miss more than CATCHUP_MAX messages and see join_room's `reset: true`.
CATCHUP_MAX = 4
SERVER_ENV = {"CHATIO_CATCHUP_MAX": str(CATCHUP_MAX), "CHATIO_HISTORY_PAGE_SIZE": "5"}


@pytest.mark.parametrize("compression", ["false", "true"])
def test_page_two_users(tmp_path: Path, compression: str) -> None:
    """Also with per-message deflate, which Chromium offers."""
    node = node_binary()
    require_npm_package("playwright-core")
    require_chromium()
    shots = tmp_path / "screenshots"
    with start_server(SERVER_ENV | {"CHATIO_WEBSOCKET_COMPRESSION": compression}) as server:
        command = [node, "page.mjs", server.url, str(shots), "--catchup-max", str(CATCHUP_MAX)]
        try:
            result = run_bounded(command, cwd=JS_DIR, timeout=SCRIPT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired as expired:
            pytest.fail(
                f"page.mjs ran longer than {SCRIPT_TIMEOUT_SECONDS:g} s\n{describe_run(expired, server)}"
            )
        assert result.returncode == 0, (
            f"page.mjs exited with {result.returncode}\n{describe_run(result, server)}"
        )
    assert (shots / "two-tabs.png").stat().st_size > 10_000, describe_run(result, server)
