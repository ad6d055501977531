"""In-process chatio servers on 127.0.0.1 and real python-socketio clients that record what they get."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import socketio
from aiohttp import web

from chatio.app import create_app
from chatio.config import Settings
from chatio.keys import SERVER

TIMEOUT = 5.0


@dataclasses.dataclass
class RunningServer:
    app: web.Application
    runner: web.AppRunner
    url: str


@asynccontextmanager
async def serving(settings: Settings | None = None, **parts: Any) -> AsyncIterator[RunningServer]:
    """Serve ``create_app(settings, **parts)`` on a free loopback port for the block's duration."""
    app = create_app(settings or Settings(pod_name="test"), **parts)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield RunningServer(app, runner, f"http://{host}:{port}")
    finally:
        # As in production shutdown: a pending long-poll would otherwise hold cleanup for its full timeout.
        await app[SERVER].close_transports()
        await runner.cleanup()


class Client:
    """A python-socketio ``AsyncClient`` that queues every server event by name."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: defaultdict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self.sio.on("*", self._record)

    async def _record(self, event: str, data: Any = None) -> None:
        self.events[event].put_nowait(data)

    async def call(self, event: str, data: Any = None) -> Any:
        """Emit with an ack and return the ack payload."""
        if data is None:
            return await self.sio.call(event, timeout=TIMEOUT)
        return await self.sio.call(event, data, timeout=TIMEOUT)

    async def expect(self, event: str, timeout: float = TIMEOUT) -> Any:
        return await asyncio.wait_for(self.events[event].get(), timeout)

    async def nothing(self, event: str, wait: float = 0.3) -> None:
        """Assert that ``event`` does not arrive within ``wait`` seconds."""
        await asyncio.sleep(wait)
        assert self.events[event].empty(), f"unexpected {event}: {self.events[event].get_nowait()}"

    async def join(self, room: str, **extra: Any) -> Any:
        ack = await self.call("join_room", {"room": room, **extra})
        assert ack["ok"], ack
        return ack


async def connect(
    url: str,
    username: str | None = None,
    *,
    auth: Any = None,
    transports: Sequence[str] = ("websocket",),
) -> Client:
    client = Client()
    await client.sio.connect(
        url,
        auth=auth if auth is not None else {"username": username},
        transports=list(transports),
        wait_timeout=TIMEOUT,
    )
    return client


@asynccontextmanager
async def clients(url: str, *usernames: str) -> AsyncIterator[list[Client]]:
    connected = [await connect(url, name) for name in usernames]
    try:
        yield connected
    finally:
        for client in connected:
            await client.sio.disconnect()


async def closed_with(ws: aiohttp.ClientWebSocketResponse, timeout: float = TIMEOUT) -> tuple[int, str]:
    """The close code and reason the server ends a plain WebSocket (``/ws/chat``) with, within ``timeout``
    (text frames before it are passed over)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            if message.type == aiohttp.WSMsgType.CLOSE:
                return message.data, message.extra
            assert message.type == aiohttp.WSMsgType.TEXT, message


class RawSocket:
    """A WebSocket that speaks Engine.IO and Socket.IO by hand, for what no client library sends (reserved
    event names, lone surrogates, integers past 64 bits). JSON is written by the standard library, which
    escapes a lone surrogate as ``\\udXXX`` as browsers do."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, url: str, auth: dict[str, Any]) -> RawSocket:
        """Connected to ``/`` with ``auth``."""
        ws = await http.ws_connect(url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket")
        raw = cls(ws)
        assert (await ws.receive_str(timeout=TIMEOUT)).startswith("0")
        await raw.send("40" + json.dumps(auth))
        assert (await raw.packet("40")).startswith("40{")
        return raw

    async def send(self, text: str) -> None:
        await self.ws.send_str(text)

    async def packet(self, prefix: str) -> str:
        """The next Socket.IO packet starting with ``prefix`` (pings answered, other packets skipped)."""
        while True:
            text = await self.ws.receive_str(timeout=TIMEOUT)
            if text == "2":
                await self.ws.send_str("3")
            elif text.startswith(prefix):
                return text

    async def call(self, event: str, *args: Any) -> Any:
        """Emit ``event`` with ``args`` and an ack id; return the ack's first argument."""
        ack_id = next(self._ids)
        await self.send(f"42{ack_id}" + json.dumps([event, *args]))
        return json.loads((await self.packet(f"43{ack_id}["))[len(f"43{ack_id}") :])[0]

    async def emit(self, event: str, *args: Any) -> None:
        """Emit without an ack id."""
        await self.send("42" + json.dumps([event, *args]))

    async def event(self, name: str) -> Any:
        """The data of the next server event ``name``."""
        return json.loads((await self.packet(f'42["{name}"'))[2:])[1]

    async def close(self) -> None:
        await self.ws.close()
