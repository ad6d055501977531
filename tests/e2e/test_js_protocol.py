"""The official socket.io-client's protocol scenarios (tests/js/protocol.mjs) against an in-process chatio:
polling only, binary arguments, a second namespace and a refused one, acks both ways, volatile emits, the
client's own ping timeout detection and its reconnection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatio.config import Settings
from chatio.keys import SERVER
from tests.harness import serving
from tests.prereqs import JS_DIR, node_binary, require_npm_package

pytestmark = pytest.mark.node

SCRIPT_TIMEOUT_SECONDS = 60.0


async def test_socketio_client_protocol_scenarios() -> None:
    node = node_binary()
    require_npm_package("socket.io-client")
    settings = Settings(pod_name="t", ping_interval_seconds=0.3, ping_timeout_seconds=0.3)
    async with serving(settings) as server:
        chat = server.app[SERVER]

        async def connect(sid: str, environ: Any, auth: Any = None) -> bool:
            return True

        async def ask_me(sid: str, data: Any) -> Any:
            return await chat.call("question", data, to=sid, namespace="/echo", timeout=5)

        async def note(sid: str, data: Any) -> None:
            await chat.emit("noted", data, to=sid, namespace="/echo")

        chat.on("connect", connect, namespace="/echo")
        chat.on("ask_me", ask_me, namespace="/echo")
        chat.on("note", note, namespace="/echo")
        proc = await asyncio.create_subprocess_exec(
            node,
            "protocol.mjs",
            server.url,
            cwd=JS_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), SCRIPT_TIMEOUT_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            pytest.fail(f"protocol.mjs ran longer than {SCRIPT_TIMEOUT_SECONDS:g} s")
        report = out.decode() + err.decode()
        assert proc.returncode == 0, report
        assert "passed: all" in report, report
