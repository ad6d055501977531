"""For tests/e2e/test_cluster.py: chat clients that outlive the process serving them, and a few real
processes.
A :class:`Chatter` is what a well-behaved client does, the delivery rule of docs/protocol.md (the web page
and :class:`JsChatter`, the npm ``socket.io-client`` in tests/js/chatter.mjs, do the same): it keeps every
message it sees by ``seq``; a hole that stays open for ``HOLE_WAIT`` seconds is filled with ``history
{after: contiguous}``; when its connection ends (a crash, a drain, a balancer dropping it) it connects
again -- to the next URL of its list, which may be a load balancer -- and joins with ``sinceSeq`` set to the
highest *contiguous* seq it holds. It sends with a ``clientMsgId`` and retries an unacknowledged message
with the same id, which the server turns into the original message instead of a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import socketio

from tests.prereqs import JS_DIR, node_binary
from tests.procs import ServerProcess, start_server

CALL_TIMEOUT = 5.0
RECONNECT_ATTEMPTS = 100
#: How long a hole in the seqs may stay open before it is filled from history.
HOLE_WAIT = 1.0
HISTORY_PAGE = 200


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        outcome = check()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        assert loop.time() < deadline, f"not within {timeout:g} s: {what}"
        await asyncio.sleep(0.05)


def get_json(url: str) -> tuple[int, Any]:
    """(status, JSON body) of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=3.0) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3.0) as answer:
        text: str = answer.read().decode()
        return text


def start_pods(names: Sequence[str], env: dict[str, str]) -> list[ServerProcess]:
    """``python -m chatio`` processes, one per name (``CHATIO_POD_NAME``), started in parallel."""
    with ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(lambda name: start_server({**env, "CHATIO_POD_NAME": name}), names))


async def launch(names: list[str], env: dict[str, str], registry: list[ServerProcess]) -> list[ServerProcess]:
    """:func:`start_pods` from a coroutine; the processes are added to ``registry`` (``pods_to_stop``)."""
    servers = await asyncio.to_thread(start_pods, names, env)
    registry.extend(servers)
    return servers


class Chatter:
    """One user in one room; see the module docstring."""

    def __init__(
        self, name: str, urls: Sequence[str], room: str, *, transports: Sequence[str] = ("websocket",)
    ) -> None:
        self.name = name
        self.urls = list(urls)
        self.room = room
        self.transports = list(transports)
        self.messages: dict[int, dict[str, Any]] = {}
        self.acked: list[dict[str, Any]] = []
        self.pods: list[str] = []
        self.shutdown_notices = 0
        self.disconnects = 0
        #: Messages that arrived after a later one of the room.
        self.out_of_order = 0
        self.events: list[tuple[str, Any]] = []
        self._filler: asyncio.Task[None] | None = None
        self._sio: socketio.AsyncClient | None = None
        self._url_index = 0
        self._sent = 0
        self._ready = asyncio.Event()
        self._lost = asyncio.Event()
        self._reconnect_after = 0.0
        self._closing = False
        self._joined = False
        self._keeper: asyncio.Task[None] | None = None

    @property
    def pod(self) -> str:
        return self.pods[-1]

    def contiguous(self) -> int:
        """The highest seq up to which this client holds every message (its rooms start empty)."""
        seq = 0
        while seq + 1 in self.messages:
            seq += 1
        return seq

    def holds(self, messages: Sequence[dict[str, Any]]) -> bool:
        return all(self.messages.get(m["seq"], {}).get("id") == m["id"] for m in messages)

    async def start(self) -> None:
        await self._connect()
        self._keeper = asyncio.get_running_loop().create_task(self._keep_connected())

    async def close(self) -> None:
        self._closing = True
        self._lost.set()
        for task in (self._keeper, self._filler):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._sio is not None:
            with contextlib.suppress(Exception):
                await self._sio.disconnect()

    async def send(self, text: str) -> dict[str, Any]:
        """Send until acknowledged (same clientMsgId on every attempt); return the stored message."""
        self._sent += 1
        payload = {"room": self.room, "text": text, "clientMsgId": f"{self.name}-{self._sent}"}
        for _ in range(RECONNECT_ATTEMPTS):
            await asyncio.wait_for(self._ready.wait(), 30)
            assert self._sio is not None
            try:
                ack = await self._sio.call("send_message", payload, timeout=CALL_TIMEOUT)
            except socketio.exceptions.SocketIOError:
                await asyncio.sleep(0.1)
                continue
            if ack["ok"]:
                message: dict[str, Any] = ack["message"]
                self.acked.append(message)
                self._keep(message)
                return message
            assert ack["error"]["code"] in {"shutting_down", "unavailable"}, ack
            await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name}: {text!r} was never acknowledged")

    async def call(self, event: str, data: dict[str, Any]) -> Any:
        await asyncio.wait_for(self._ready.wait(), 30)
        assert self._sio is not None
        return await self._sio.call(event, data, timeout=CALL_TIMEOUT)

    def _keep(self, message: dict[str, Any]) -> None:
        if message["room"] != self.room or message["seq"] in self.messages:
            return
        if self.messages and message["seq"] < max(self.messages):
            self.out_of_order += 1
        self.messages[message["seq"]] = message
        if self._has_hole() and (self._filler is None or self._filler.done()) and not self._closing:
            self._filler = asyncio.get_running_loop().create_task(self._fill_holes())

    def _has_hole(self) -> bool:
        return bool(self.messages) and max(self.messages) > self.contiguous()

    async def _fill_holes(self) -> None:
        """A hole still open after HOLE_WAIT: ask the store (which has none) for what follows contiguous."""
        while True:
            await asyncio.sleep(HOLE_WAIT)
            if not self._has_hole():
                return
            with contextlib.suppress(socketio.exceptions.SocketIOError, TimeoutError):
                if self._ready.is_set() and self._sio is not None:
                    page = {"room": self.room, "after": self.contiguous(), "limit": HISTORY_PAGE}
                    ack = await self._sio.call("history", page, timeout=CALL_TIMEOUT)
                    for message in ack.get("messages", []) if ack["ok"] else []:
                        self.messages.setdefault(message["seq"], message)

    async def _keep_connected(self) -> None:
        while True:
            await self._lost.wait()
            if self._closing:
                return
            self._lost.clear()
            await asyncio.sleep(self._reconnect_after)
            self._reconnect_after = 0.0
            await self._connect()

    async def _connect(self) -> None:
        for _ in range(RECONNECT_ATTEMPTS):
            url = self.urls[self._url_index % len(self.urls)]
            self._url_index += 1
            sio = self._client()
            try:
                await sio.connect(
                    url, auth={"username": self.name}, transports=self.transports, wait_timeout=CALL_TIMEOUT
                )
                join = {"room": self.room, **({"sinceSeq": self.contiguous()} if self._joined else {})}
                ack = await sio.call("join_room", join, timeout=CALL_TIMEOUT)
            except (socketio.exceptions.SocketIOError, OSError):
                ack = None
            if ack is not None and ack["ok"]:
                for message in ack["history"]:
                    self._keep(message)
                self._sio = sio
                self._joined = True
                self._ready.set()
                return
            with contextlib.suppress(Exception):
                await sio.disconnect()
            await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} could not connect to any of {self.urls}")

    def _client(self) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False)

        async def on_any(event: str, data: Any = None) -> None:
            self.events.append((event, data))
            if event == "message":
                self._keep(data)
            elif event == "session":
                self.pods.append(data["pod"])
            elif event == "server_shutdown":
                self.shutdown_notices += 1
                self._reconnect_after = data["reconnectAfterMs"] / 1000

        async def on_disconnect(*_reason: Any) -> None:
            if sio is self._sio and not self._closing:
                self.disconnects += 1
                self._ready.clear()
                self._lost.set()

        sio.on("*", on_any)
        sio.on("disconnect", on_disconnect)
        return sio


async def converse(chatters: Sequence[Chatter], rounds: int, pause: float) -> None:
    """Every chatter sends ``rounds`` messages, ``pause`` seconds apart, all at the same time."""

    async def talk(chatter: Chatter) -> None:
        for i in range(rounds):
            await chatter.send(f"{chatter.name} #{i}")
            await asyncio.sleep(pause)

    await asyncio.gather(*(talk(chatter) for chatter in chatters))


def assert_full_ordered_history(chatters: Sequence[Chatter]) -> None:
    """Every client holds every acknowledged message, under the seq it was acknowledged with, gap-free."""
    acked = {m["seq"]: m for chatter in chatters for m in chatter.acked}
    assert sorted(acked) == list(range(1, len(acked) + 1)), "acknowledged seqs have gaps"
    for chatter in chatters:
        missing = sorted(
            seq for seq, m in acked.items() if chatter.messages.get(seq, {}).get("id") != m["id"]
        )
        assert not missing, f"{chatter.name} (served by {chatter.pods}) misses seqs {missing}"
        assert sorted(chatter.messages) == list(range(1, len(acked) + 1)), f"{chatter.name} holds extra seqs"


class JsChatter:
    """A :class:`Chatter` on the npm ``socket.io-client``: tests/js/chatter.mjs in a node process, driven
    over its stdin and stdout. Reconnecting is socket.io-client's own; the delivery rule is the page's."""

    def __init__(self, name: str, url: str, room: str, *, transports: Sequence[str] = ("websocket",)) -> None:
        self.name = name
        self.url = url
        self.room = room
        self.transports = list(transports)
        self.messages: dict[int, dict[str, Any]] = {}
        self.acked: list[dict[str, Any]] = []
        self.pods: list[str] = []
        self.disconnects = 0
        self.out_of_order = 0
        self._sent = 0
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def pod(self) -> str:
        return self.pods[-1]

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            node_binary(),
            "chatter.mjs",
            self.url,
            self.name,
            self.room,
            ",".join(self.transports),
            cwd=JS_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await eventually(lambda: bool(self.pods), 30, f"{self.name} (node) connected")

    async def send(self, text: str) -> dict[str, Any]:
        self._sent += 1
        client_msg_id = f"{self.name}-{self._sent}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[client_msg_id] = future
        self._command({"send": text, "clientMsgId": client_msg_id})
        return await asyncio.wait_for(future, 120)

    async def close(self) -> None:
        if self._process is None:
            return
        if self._process.returncode is None:
            with contextlib.suppress(ConnectionError):
                self._command({"quit": True})
            try:
                await asyncio.wait_for(self._process.wait(), 5)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._reader is not None:
            await self._reader

    def _command(self, command: dict[str, Any]) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(json.dumps(command).encode() + b"\n")

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        async for line in self._process.stdout:
            report = json.loads(line)
            if "kept" in report:
                self.messages[report["kept"]["seq"]] = report["kept"]
            elif "acked" in report:
                self.acked.append(report["acked"])
                future = self._pending.pop(report["clientMsgId"], None)
                if future is not None and not future.done():
                    future.set_result(report["acked"])
            elif "session" in report:
                self.pods.append(report["session"])
            elif "disconnect" in report and report["disconnect"] != "io client disconnect":
                self.disconnects += 1
            elif "outOfOrder" in report:
                self.out_of_order += 1
        for future in self._pending.values():
            if not future.done():
                future.set_exception(AssertionError(f"{self.name} (node) exited"))
