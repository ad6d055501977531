"""ChatServer with the real python-socketio client: acks in both directions, and clients that reconnect
after a drain or an eviction."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from chatio.config import Settings
from chatio.keys import SERVER
from tests.harness import clients, serving


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
async def test_the_server_can_call_a_client_and_get_its_answer(transports: list[str]) -> None:
    async with serving() as server:
        client = socketio.AsyncClient(reconnection=False)
        client.on("quiz", lambda data: {"answer": data["question"] * 2})
        await client.connect(server.url, auth={"username": "quizzed"}, transports=transports, wait_timeout=5)
        try:
            answer = await server.app[SERVER].call("quiz", {"question": 21}, to=client.get_sid(), timeout=5)
            assert answer == {"answer": 42}
        finally:
            await client.disconnect()


async def test_a_call_inside_a_command_does_not_stall_the_connection() -> None:
    """The client's ack of a server call reaches the server while that client's command waits for it."""
    async with serving() as server, clients(server.url, "asker") as (asker,):
        answers: list[Any] = []
        asker.sio.on("confirm", lambda data: "yes")
        chat = server.app[SERVER]
        sid = asker.sio.get_sid()

        async def on_confirm_me(sid: str, payload: Any) -> dict[str, Any]:
            answers.append(await chat.call("confirm", {}, to=sid, timeout=5))
            return {"ok": True}

        chat.on("confirm_me", on_confirm_me)
        assert await asker.call("confirm_me", {}) == {"ok": True}
        assert answers == ["yes"] and sid


class Reconnecting:
    """A python-socketio client that reconnects by itself, counting its connections."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.2)
        self.connects = 0
        self.connected = asyncio.Event()
        self.sio.on("connect", self._connected)

    async def _connected(self) -> None:
        self.connects += 1
        self.connected.set()

    async def reconnected(self) -> None:
        self.connected.clear()
        async with asyncio.timeout(10):
            await self.connected.wait()


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
async def test_python_clients_reconnect_after_a_drain(transports: list[str]) -> None:
    async with serving(Settings(pod_name="t")) as server:
        client = Reconnecting()
        await client.sio.connect(
            server.url, auth={"username": "drained"}, transports=transports, wait_timeout=5
        )
        try:
            waiting = asyncio.ensure_future(client.reconnected())
            await server.app[SERVER].close_transports()
            await waiting
            assert client.connects == 2
        finally:
            await client.sio.disconnect()


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
async def test_python_clients_reconnect_after_an_eviction(transports: list[str]) -> None:
    async with serving(Settings(pod_name="t")) as server:
        client = Reconnecting()
        notices: list[Any] = []
        client.sio.on("disconnect_reason", notices.append)
        await client.sio.connect(
            server.url, auth={"username": "evicted"}, transports=transports, wait_timeout=5
        )
        try:
            waiting = asyncio.ensure_future(client.reconnected())
            chat = server.app[SERVER]
            await chat.evict(client.sio.eio.sid, "disconnect_reason", {"code": "slow_consumer"})
            await waiting
            assert client.connects == 2
            assert notices == [{"code": "slow_consumer"}]
        finally:
            await client.sio.disconnect()
