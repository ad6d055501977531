"""The broadcast fast path and the python-socketio/engineio internals chatio relies on (pinned versions)."""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version
from typing import Any

import engineio
import pytest
import socketio
from engineio.async_drivers import aiohttp as eio_aiohttp

from chatio import transport
from chatio.config import Settings
from tests.harness import clients, connect, serving


def test_pinned_versions_are_installed() -> None:
    assert version("python-socketio") == "5.18.1"
    assert version("python-engineio") == "4.15.1"


def test_internals_have_the_expected_shape() -> None:
    params = list(inspect.signature(socketio.AsyncServer._handle_event_internal).parameters)
    assert params == ["self", "server", "sid", "eio_sid", "data", "namespace", "id"]
    socket_source = inspect.getsource(engineio.async_socket.AsyncSocket.poll)
    assert "self.queue.task_done()" in socket_source
    handler_source = inspect.getsource(engineio.async_socket.AsyncSocket._websocket_handler)
    assert "await ws.send(pkt.encode())" in handler_source
    assert "_async['websocket'](\n            self._websocket_handler" in inspect.getsource(
        engineio.async_socket.AsyncSocket._upgrade_websocket
    )
    assert inspect.getsource(eio_aiohttp.WebSocket.__call__).count("WebSocketResponse(") == 1
    pubsub = inspect.getsource(socketio.async_pubsub_manager.AsyncPubSubManager._handle_emit)
    assert "await super().emit(" in pubsub
    mro = transport.FastRedisManager.__mro__
    assert mro.index(transport.FastManager) < mro.index(socketio.AsyncManager)
    assert mro.index(socketio.async_pubsub_manager.AsyncPubSubManager) < mro.index(transport.FastManager)


def test_text_frames_follow_rfc_6455() -> None:
    assert transport.text_frame(b"hi") == b"\x81\x02hi"
    medium = transport.text_frame(b"x" * 300)
    assert medium[:4] == b"\x81\x7e\x01\x2c" and len(medium) == 304
    large = transport.text_frame(b"x" * 70_000)
    assert large[:2] == b"\x81\x7f" and int.from_bytes(large[2:10], "big") == 70_000


@pytest.fixture
def direct_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Record each fast-path decision as (Engine.IO sid, written directly); the real function still runs."""
    decisions: list[tuple[str, bool]] = []
    real = transport._write_direct

    def spy(socket: Any, frame: bytes) -> bool:
        decisions.append((socket.sid, real(socket, frame)))
        return decisions[-1][1]

    monkeypatch.setattr(transport, "_write_direct", spy)
    return decisions


@pytest.mark.parametrize("transports", [("websocket",), ("polling",), ("polling", "websocket")])
async def test_order_is_kept_per_connection(
    direct_writes: list[tuple[str, bool]], transports: tuple[str, ...]
) -> None:
    settings = Settings(pod_name="t", rate_limit_per_minute=100_000)
    async with serving(settings) as server, clients(server.url, "sender") as (sender,):
        receiver = await connect(server.url, "receiver", transports=transports)
        await sender.join("r")
        await receiver.join("r")
        total = 300

        async def chatter() -> None:
            # The receiver's own acks and typing traffic interleave with the broadcasts it receives.
            for _ in range(20):
                await receiver.call("typing_start", {"room": "r"})
                await receiver.call("history", {"room": "r", "limit": 5})

        sends = [sender.call("send_message", {"room": "r", "text": f"m{i}"}) for i in range(total)]
        results = await asyncio.gather(chatter(), *sends)
        assert all(ack["ok"] for ack in results[1:])
        seqs = [(await receiver.expect("message"))["seq"] for _ in range(total)]
        assert seqs == sorted(seqs) == list(range(1, total + 1))
        mine = [direct for sid, direct in direct_writes if sid == receiver.sio.eio.sid]
        await receiver.sio.disconnect()
    assert len(mine) >= total
    if transports == ("websocket",):
        assert mine.count(True) >= total // 2, "the fast path was hardly used"
    if transports == ("polling",):
        assert not any(mine), "long-polling must use the queue"


async def test_fast_path_off_still_delivers(direct_writes: list[tuple[str, bool]]) -> None:
    async with (
        serving(Settings(pod_name="t", fast_broadcast=False)) as server,
        clients(server.url, "a", "b") as (a, b),
    ):
        await a.join("r")
        await b.join("r")
        await a.call("send_message", {"room": "r", "text": "slow path"})
        assert (await b.expect("message"))["text"] == "slow path"
    assert direct_writes == []


async def test_compression_is_off_unless_asked() -> None:
    for enabled in (False, True):
        async with serving(Settings(pod_name="t", websocket_compression=enabled)) as server:
            import aiohttp

            url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
            async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=15) as ws:
                assert bool(ws.compress) is enabled
                await ws.receive(timeout=5)
