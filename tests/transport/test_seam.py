"""The seam into python-socketio and aiohttp (chatio/transport/seam.py), and the broadcast fast path."""

from __future__ import annotations

import ast
import asyncio
import inspect
from pathlib import Path

import pytest
import socketio
from aiohttp.web_protocol import RequestHandler

import chatio
from chatio import transport
from chatio.config import Settings
from chatio.keys import SERVER
from chatio.transport import ChatServer
from chatio.transport.engine import EngineServer
from chatio.transport.frames import binary_frame
from chatio.transport.wire import Wire
from tests.harness import clients, connect, serving


def test_python_socketio_builds_chatio_engine() -> None:
    """``_engineio_server_class()`` is how python-socketio builds its Engine.IO server, with its options."""
    server = ChatServer(async_mode="aiohttp", ping_interval=0.3, ping_timeout=0.2, max_http_buffer_size=5000)
    assert type(server.eio) is EngineServer
    assert (server.eio.ping_interval, server.eio.ping_timeout, server.eio.max_payload) == (0.3, 0.2, 5000)
    # python-socketio registered its handlers on it; ChatServer put its own packet check first.
    assert set(server.eio.handlers) == {"connect", "message", "disconnect"}
    assert server.eio.handlers["message"] == server.receive_message
    assert server.async_handlers, "call() needs async_handlers"


def test_the_private_names_the_seam_uses_exist() -> None:
    """Each python-socketio internal chatio/transport/seam.py calls or overrides, with its parameters."""

    def params(function: object) -> list[str]:
        return list(inspect.signature(function).parameters)  # type: ignore[arg-type]

    server = socketio.AsyncServer
    assert params(server._engineio_server_class) == ["self"]
    assert params(server._handle_event) == ["self", "eio_sid", "namespace", "id", "data"]
    assert params(server._trigger_event) == ["self", "event", "namespace", "args"]
    assert params(server._send_packet) == ["self", "eio_sid", "pkt"]
    assert params(server._handle_eio_message) == ["self", "eio_sid", "data"]
    assert isinstance(socketio.AsyncServer()._binary_packet, dict)
    # take_over leans on aiohttp's request handler (the behaviour: test_wire's
    # test_aiohttp_lets_go_of_taken_over_connections).
    slots = {name for cls in RequestHandler.__mro__ for name in getattr(cls, "__slots__", ())}
    assert {"transport", "_message_tail", "_manager", "_reading_paused"} <= slots
    # FastRedisManager's local delivery goes through FastManager.emit by the method resolution order.
    mro = transport.FastRedisManager.__mro__
    assert mro.index(transport.FastManager) < mro.index(socketio.AsyncManager)
    assert mro.index(socketio.async_pubsub_manager.AsyncPubSubManager) < mro.index(transport.FastManager)


def test_no_private_api_outside_the_seam() -> None:
    """No module of chatio but the seam (and fan-out, for the pub/sub hooks) names a private attribute of
    python-socketio's server or managers, or of aiohttp's request handler."""
    theirs = {
        name
        for cls in (socketio.AsyncServer, socketio.AsyncRedisManager)
        for name in dir(cls)
        if name.startswith("_") and not name.startswith("__")
    }
    theirs |= {name for name in vars(socketio.AsyncServer()) if name.startswith("_")}
    # aiohttp's request handler: the distinctive names take_over uses (its ``_manager`` is a common word).
    theirs |= {"_message_tail", "_reading_paused", "_task_handler", "_force_close"}
    root = Path(chatio.__file__).parent
    allowed = {root / "transport" / "seam.py": theirs, root / "transport" / "fanout.py": _PUBSUB_HOOKS}
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "name", None)
            if name in theirs and name not in allowed.get(path, ()):
                offenders.append(f"{path.relative_to(root)}:{node.lineno} {name}")  # type: ignore[attr-defined]
    assert offenders == []


_PUBSUB_HOOKS = {"_publish", "_listen", "_handle_emit", "_thread"}


def test_text_frames_follow_rfc_6455() -> None:
    assert transport.text_frame(b"hi") == b"\x81\x02hi"
    medium = transport.text_frame(b"x" * 300)
    assert medium[:4] == b"\x81\x7e\x01\x2c" and len(medium) == 304
    large = transport.text_frame(b"x" * 70_000)
    assert large[:2] == b"\x81\x7f" and int.from_bytes(large[2:10], "big") == 70_000
    assert binary_frame(b"\x00\x01") == b"\x82\x02\x00\x01"


@pytest.fixture
def pushes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, bool]]:
    """Record each frame a WebSocket wire writes or backlogs (a spy: the real method still runs)."""
    seen: list[tuple[str | None, bool]] = []
    real = Wire.send

    def spy(self: Wire, frame: bytes) -> bool:
        seen.append((getattr(self.receiver, "sid", None), self.backlog is None))
        return real(self, frame)

    monkeypatch.setattr(Wire, "send", spy)
    return seen


@pytest.mark.parametrize("transports", [("websocket",), ("polling",), ("polling", "websocket")])
async def test_order_is_kept_per_connection(
    pushes: list[tuple[str | None, bool]], transports: tuple[str, ...]
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
        mine = [direct for sid, direct in pushes if sid == receiver.sio.eio.sid]
        await receiver.sio.disconnect()
    if transports == ("polling",):
        assert mine == [], "long-polling must use the Engine.IO queue"
    else:
        assert len(mine) >= total and mine.count(True) >= total // 2, "the fast path was hardly used"


async def test_fast_path_off_still_delivers() -> None:
    async with (
        serving(Settings(pod_name="t", fast_broadcast=False)) as server,
        clients(server.url, "a", "b") as (a, b),
    ):
        await a.join("r")
        await b.join("r")
        await a.call("send_message", {"room": "r", "text": "slow path"})
        assert (await b.expect("message"))["text"] == "slow path"


async def test_compression_is_off_unless_asked() -> None:
    for enabled in (False, True):
        async with serving(Settings(pod_name="t", websocket_compression=enabled)) as server:
            import aiohttp

            url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
            async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=15) as ws:
                assert bool(ws.compress) is enabled
                await ws.receive(timeout=5)


async def test_websocket_sessions_ping_and_time_out_dead_clients() -> None:
    """The shared pinger pings every session; a client that stops answering is closed by Engine.IO."""
    settings = Settings(pod_name="t", ping_interval_seconds=1, ping_timeout_seconds=1)
    async with serving(settings) as server:
        import aiohttp

        url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(url) as alive,
            http.ws_connect(url) as silent,
        ):
            for ws in (alive, silent):
                opened = await ws.receive(timeout=5)
                assert opened.data.startswith("0{")
                await ws.send_str('40{"username":"u"}')
                assert (await ws.receive(timeout=5)).data.startswith("40")
            pings = 0
            for _ in range(3):
                frame = await alive.receive(timeout=5)
                if frame.data == "2":
                    pings += 1
                    await alive.send_str("3")
            assert pings >= 2
            ended = await silent.receive(timeout=10)
            while ended.type is aiohttp.WSMsgType.TEXT:  # its pings and the CLOSE packet
                ended = await silent.receive(timeout=10)
            assert ended.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert not alive.closed


async def test_the_rooms_index_agrees_with_python_socketio() -> None:
    """FastManager's sid->rooms index answers what python-socketio's full scan would, at every step."""
    async with serving() as server, clients(server.url, "a", "b", "c") as people:
        manager = server.app[SERVER].manager

        def check() -> None:
            for sid in {sid for room in manager.rooms.get("/", {}).values() for sid in room}:
                scanned = socketio.base_manager.BaseManager.get_rooms(manager, sid, "/")
                assert sorted(manager.get_rooms(sid, "/")) == sorted(scanned)

        for person, rooms in zip(people, [["r1", "r2"], ["r2"], ["r1", "r3"]], strict=True):
            for room in rooms:
                await person.join(room)
        check()
        await people[0].call("leave_room", {"room": "r1"})
        check()
        gone = people[2].sio.sid
        await people[2].sio.disconnect()
        await asyncio.sleep(0.2)
        check()
        assert all(gone not in members for members in manager.rooms["/"].values())
        assert not [key for key in manager._sid_rooms if key[1] == gone]
