"""The broadcast fast path and the python-socketio/engineio internals chatio relies on (pinned versions)."""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

import engineio
import pytest
import socketio
from aiohttp import web_server
from aiohttp.web_protocol import RequestHandler
from engineio.async_drivers import aiohttp as eio_aiohttp

from chatio import transport
from chatio.config import Settings
from chatio.keys import SERVER
from chatio.transport.frames import binary_frame
from chatio.transport.wire import Wire
from tests.harness import clients, connect, serving


def test_pinned_versions_are_installed() -> None:
    assert version("python-socketio") == "5.18.1"
    assert version("python-engineio") == "4.15.1"
    assert version("aiohttp") == "3.14.5"


def test_internals_have_the_expected_shape() -> None:
    params = list(inspect.signature(socketio.AsyncServer._handle_event_internal).parameters)
    assert params == ["self", "server", "sid", "eio_sid", "data", "namespace", "id"]
    assert list(inspect.signature(socketio.AsyncServer._handle_eio_disconnect).parameters) == [
        "self",
        "eio_sid",
        "reason",
    ]
    # ChatServer._handle_event_internal replays this body, writing the ack as one frame.
    internal = inspect.getsource(socketio.AsyncServer._handle_event_internal)
    for needle in [
        "r = await server._trigger_event(data[0], namespace, sid, *data[1:])",
        "if r != self.not_handled and id is not None:",
        "packet.ACK, namespace=namespace, id=id, data=data",
    ]:
        assert needle in internal, needle
    # ChatServer.receive_event calls _handle_event as _handle_eio_message does for a text EVENT.
    message = inspect.getsource(socketio.AsyncServer._handle_eio_message)
    assert "if eio_sid in self._binary_packet:" in message
    assert "await self._handle_event(eio_sid, pkt.namespace, pkt.id,\n" in message
    socket_source = inspect.getsource(engineio.async_socket.AsyncSocket)
    # WebSocketSession overrides send/schedule_ping/close and relies on receive() for every packet type.
    for needle in [
        "_async['websocket'](\n            self._websocket_handler",
        "if pkt.packet_type == packet.PONG:\n            self.schedule_ping()",
        "await self.close(wait=False, abort=True,",
        "last_ping = self.last_ping",
    ]:
        assert needle in socket_source, needle
    # PollingSession.poll re-implements AsyncSocket.poll, capped at what python clients decode.
    assert engineio.payload.Payload.max_decode_packets == 16
    assert "self.queue.task_done()" in inspect.getsource(engineio.async_socket.AsyncSocket.poll)
    # FastManager.basic_disconnect replays the base body with an index instead of the scan.
    disconnect = inspect.getsource(socketio.base_manager.BaseManager.basic_disconnect)
    for needle in ["self.basic_leave_room(sid, namespace, room)", "del self.callbacks[sid]"]:
        assert needle in disconnect, needle
    assert disconnect.count("pending_connect") == 5 and disconnect.count("pending_disconnect") == 5
    connect = inspect.getsource(engineio.async_server.AsyncServer._handle_connect)
    assert "await s.send(pkt)" in connect and "s.schedule_ping()" in connect
    assert "s.check_ping_timeout()" in inspect.getsource(engineio.async_server.AsyncServer._service_task)
    # ChatWebSocket replaces the driver's __call__ and keeps its constructor (handler, server).
    assert list(inspect.signature(eio_aiohttp.WebSocket.__init__).parameters) == ["self", "handler", "server"]
    # client_environ (chatio/transport/server.py) finds the peer through the request in the environ.
    assert "'aiohttp.request': request" in inspect.getsource(eio_aiohttp.translate_request)
    # take_over (chatio/transport/wire.py) leans on aiohttp's request handler.
    slots = {name for cls in RequestHandler.__mro__ for name in getattr(cls, "__slots__", ())}
    assert {"transport", "_message_tail", "_manager", "_task_handler", "_reading_paused"} <= slots
    assert (
        "if not self._force_close:\n            self._task_handler = None\n            if self.transport"
        in (inspect.getsource(RequestHandler.start))
    )
    assert "_task_handler.add_done_callback" in inspect.getsource(web_server.Server.connection_lost)
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
