"""Floods and hogs: connections per address, logins per address, messages per user, and a client that
stops reading. The message flood per socket and the oversized frame are in tests/realtime/test_bad_input.py;
an XSS payload shown as text in a real browser is in tests/e2e/test_page.py (tests/js/page.mjs)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web

from chatio.config import Secret, Settings
from chatio.keys import SERVER
from chatio.ratelimit.gate import client_address
from chatio.transport import server as transport_server
from tests.accounts_helpers import call, fast_passwords, signed_up
from tests.harness import Client, clients, connect, serving


@pytest.mark.parametrize(
    ("peer", "forwarded", "hops", "expected"),
    [
        ("10.0.0.5", None, 0, "10.0.0.5"),
        ("10.0.0.5", "203.0.113.7", 0, "10.0.0.5"),  # not trusted: the header is the client's word
        ("10.0.0.5", "203.0.113.7", 1, "203.0.113.7"),
        ("10.0.0.5", "6.6.6.6, 203.0.113.7", 1, "203.0.113.7"),  # a forged left part changes nothing
        ("10.0.0.5", "6.6.6.6, 203.0.113.7, 10.0.0.9", 2, "203.0.113.7"),
        ("10.0.0.5", "203.0.113.7", 2, "10.0.0.5"),  # fewer entries than proxies: the peer
        ("2001:db8:1:2:3:4:5:6", None, 0, "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", None, 0, "192.0.2.1"),
        (None, None, 0, "unknown"),
    ],
)
def test_the_client_address(peer: str | None, forwarded: str | None, hops: int, expected: str) -> None:
    assert client_address(peer, forwarded, hops) == expected


async def test_connections_per_address_are_limited() -> None:
    async with (
        serving(Settings(pod_name="t", connect_rate_per_minute=3)) as server,
        clients(server.url, "a", "b", "c"),
    ):
        # The Engine.IO handshake counts (a session that never sends CONNECT holds a place too).
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{server.url}/socket.io/?EIO=4&transport=polling") as refused,
        ):
            assert refused.status == 429
            assert "more than 3 connect requests a minute" in (await refused.json())["context"]
        # Behind no trusted proxy, X-Forwarded-For is the client's own claim and changes nothing.
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(
                server.url,
                auth={"username": "e"},
                headers={"X-Forwarded-For": "198.51.100.1"},
                transports=["websocket"],
                wait_timeout=5,
            )


async def test_behind_a_trusted_proxy_the_forwarded_address_is_limited() -> None:
    settings = Settings(pod_name="t", connect_rate_per_minute=2, trusted_proxy_hops=1)
    async with serving(settings) as server:
        connected: list[socketio.AsyncClient] = []
        try:
            for n, address in enumerate(
                ["198.51.100.1", "198.51.100.1", "198.51.100.2", "9.9.9.9, 198.51.100.2"]
            ):
                client = socketio.AsyncClient(reconnection=False)
                await client.connect(
                    server.url,
                    auth={"username": f"u{n}"},
                    headers={"X-Forwarded-For": address},
                    transports=["websocket"],
                    wait_timeout=5,
                )
                connected.append(client)
            third = socketio.AsyncClient(reconnection=False)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await third.connect(
                    server.url,
                    auth={"username": "u9"},
                    headers={"X-Forwarded-For": "1.2.3.4, 198.51.100.1"},
                    transports=["websocket"],
                    wait_timeout=5,
                )
        finally:
            for client in connected:
                await client.disconnect()


async def test_logins_per_address_are_limited() -> None:
    async with (
        serving(Settings(pod_name="t", auth_rate_per_minute=3), passwords=fast_passwords()) as server,
        aiohttp.ClientSession() as http,
    ):
        await signed_up(http, server.url, "alice")  # a registration and a login: two of three
        guesses = [
            await call(
                http,
                "POST",
                f"{server.url}/api/chat/auth/login",
                json={"username": "alice", "password": f"guess-{n}"},
            )
            for n in range(3)
        ]
        assert [status for status, _ in guesses] == [401, 429, 429]
        assert guesses[1][1]["error"]["code"] == "rate_limited" and guesses[1][1]["error"]["retryAfterMs"] > 0


async def test_the_message_rate_is_per_user_not_per_socket() -> None:
    settings = Settings(
        pod_name="t", allow_guests=False, jwt_secret=Secret("f" * 40), rate_limit_per_minute=10
    )
    async with serving(settings, passwords=fast_passwords()) as server, aiohttp.ClientSession() as http:
        token = (await signed_up(http, server.url, "flooder"))["accessToken"]
        sockets = [await connect(server.url, auth={"token": token}) for _ in range(3)]
        try:
            for socket in sockets:
                await socket.join("r")
            acks = await asyncio.gather(
                *(s.call("send_message", {"room": "r", "text": f"m{n}"}) for n in range(8) for s in sockets)
            )
            assert sum(ack["ok"] for ack in acks) == 10
            assert {ack["error"]["code"] for ack in acks if not ack["ok"]} == {"rate_limited"}
        finally:
            for socket in sockets:
                await socket.sio.disconnect()


# --- a client that stops reading ----------------------------------------------------------------------

MAX_QUEUE = 20
BIG_TEXT = "x" * 60_000
FLOOD = 400


async def stalled_member(http: aiohttp.ClientSession, url: str, room: str) -> aiohttp.ClientWebSocketResponse:
    """A Socket.IO client, by hand, that joins ``room`` and then stops reading its socket."""
    ws = await http.ws_connect(url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket")
    await ws.receive_str(timeout=5)  # Engine.IO open
    await ws.send_str('40{"username": "slowpoke"}')
    await ws.send_str("420" + json.dumps(["join_room", {"room": room}]))
    while not (await ws.receive_str(timeout=5)).startswith("430"):
        pass
    return ws


def queue_depth(server_app: Any) -> int:
    return max((len(socket.queue or ()) for socket in server_app[SERVER].eio.sessions.values()), default=0)


def slow_settings() -> Settings:
    return Settings(
        pod_name="t",
        slow_consumer_max_queue=MAX_QUEUE,
        rate_limit_per_minute=100_000,
        message_max_length=100_000,
        max_payload_bytes=1_000_000,
    )


async def flood_until_evicted(server_app: Any, sender: Client) -> int:
    """Send 60 kB messages until the stalled member is gone; return how many. The queue stays bounded."""
    service = server_app[SERVER].namespace_handlers["/"].service
    connected = service.connection_count
    deepest = sent = 0
    while service.connection_count == connected and sent < FLOOD:
        assert (await sender.call("send_message", {"room": "r", "text": BIG_TEXT}))["ok"]
        sent += 1
        deepest = max(deepest, queue_depth(server_app))
    assert service.connection_count == connected - 1, f"not evicted after {sent} messages of 60 kB"
    assert sent > MAX_QUEUE and deepest <= MAX_QUEUE
    return sent


async def test_a_slow_consumer_is_disconnected_and_memory_stays_bounded() -> None:
    async with serving(slow_settings()) as server, aiohttp.ClientSession() as http:
        sender, reader = await connect(server.url, "sender"), await connect(server.url, "reader")
        await sender.join("r")
        await reader.join("r")
        slow = await stalled_member(http, server.url, "r")
        try:
            sent = await flood_until_evicted(server.app, sender)
            frames = await read_until_closed(slow)
            reasons = [json.loads(f[2:])[1] for f in frames if f.startswith('42["disconnect_reason"')]
            assert reasons and reasons[0]["code"] == "slow_consumer", frames[-3:]
            assert await sender.expect("user_left") == {
                "room": "r",
                "user": "slowpoke",
                "displayName": "slowpoke",
            }
            # Everybody else got everything.
            assert [len((await reader.expect("message"))["text"]) for _ in range(sent)] == [60_000] * sent
            assert (await sender.call("send_message", {"room": "r", "text": "still fine"}))["ok"]
        finally:
            await slow.close()
            await sender.sio.disconnect()
            await reader.sio.disconnect()


async def test_a_consumer_that_never_reads_again_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_server, "EVICT_GRACE_SECONDS", 0.3)
    async with serving(slow_settings()) as server, aiohttp.ClientSession() as http:
        sender = await connect(server.url, "sender")
        await sender.join("r")
        slow = await stalled_member(http, server.url, "r")
        try:
            await flood_until_evicted(server.app, sender)
            for _ in range(50):
                if open_websockets(server.app) == 1:
                    break
                await asyncio.sleep(0.05)
            assert open_websockets(server.app) == 1, "the stalled socket stays"
        finally:
            await slow.close()
            await sender.sio.disconnect()


def open_websockets(app: web.Application) -> int:
    return sum(not socket.wire.lost for socket in app[SERVER].eio.sessions.values())


async def read_until_closed(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
    frames = []
    while True:
        message = await ws.receive(timeout=10)
        if message.type != aiohttp.WSMsgType.TEXT:
            return frames
        frames.append(message.data[:200])


async def test_other_origins_are_refused_unless_listed() -> None:
    """A page on another site cannot open a socket with its visitors' browsers (cross-site WebSocket)."""

    async def handshake(url: str, origin: str) -> int:
        async with http.get(
            f"{url}/socket.io/?EIO=4&transport=polling", headers={"Origin": origin}
        ) as answer:
            return answer.status

    async with aiohttp.ClientSession() as http:
        async with serving(Settings(pod_name="t")) as server:
            assert await handshake(server.url, server.url) == 200  # same origin
            assert await handshake(server.url, "https://evil.example") == 400
        async with serving(Settings(pod_name="t", cors_origins=("https://app.example",))) as server:
            assert await handshake(server.url, "https://app.example") == 200
            assert await handshake(server.url, "https://evil.example") == 400
