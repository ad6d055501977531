"""Durability end to end: real ``python -m chatio`` processes on a real mongod, real socket clients.

What an acknowledgement promises is checked where it matters: after the server is killed with SIGKILL,
after a restart, with two servers writing one room, and while mongod itself is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import socketio
from pymongo import MongoClient

from tests.harness import Client, connect
from tests.procs import ServerProcess, start_server
from tests.services import MongodFactory

pytestmark = pytest.mark.mongo


def settings_for(uri: str, database: str) -> dict[str, str]:
    return {
        "CHATIO_MONGODB_URI": uri,
        "CHATIO_MONGODB_DATABASE": database,
        "CHATIO_ALLOW_GUESTS": "true",
        "CHATIO_RATE_LIMIT_PER_MINUTE": "100000",
        "CHATIO_STORE_TIMEOUT_SECONDS": "2",
    }


def stored_seqs(admin: MongoClient[dict[str, Any]], database: str, room: str) -> list[int]:
    return sorted(doc["seq"] for doc in admin[database]["messages"].find({"room": room}, {"seq": 1}))


def readiness(server: ServerProcess) -> int:
    try:
        with urllib.request.urlopen(f"{server.url}/readyz", timeout=3) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


async def send_until_stopped(
    client: Client, room: str, tag: str, acked: list[dict[str, Any]], enough: asyncio.Event
) -> None:
    """Send with acks until one fails (the server died); keep every acknowledged message.

    ``enough`` is set once 300 messages are acknowledged in all."""
    for number in range(100_000):
        try:
            ack = await client.sio.call("send_message", {"room": room, "text": f"{tag} {number}"}, timeout=3)
        except (TimeoutError, socketio.exceptions.SocketIOError):
            return
        if not ack["ok"]:
            return
        acked.append(ack["message"])
        if len(acked) >= 300:
            enough.set()


async def test_every_acknowledged_message_survives_kill_9_and_a_restart(
    mongodb_uri: str, mongodb_database: str, mongodb_admin: MongoClient[dict[str, Any]]
) -> None:
    settings = settings_for(mongodb_uri, mongodb_database)
    acked: list[dict[str, Any]] = []
    with start_server(settings) as server:
        senders = [await connect(server.url, f"sender{n}") for n in range(4)]
        for sender in senders:
            await sender.join("durable")
        enough = asyncio.Event()
        running = [
            asyncio.create_task(send_until_stopped(s, "durable", s.sio.sid, acked, enough)) for s in senders
        ]
        await asyncio.wait_for(enough.wait(), 30)
        os.kill(server.pid, signal.SIGKILL)  # mid-stream: sends are in flight
        await asyncio.wait_for(asyncio.gather(*running), 15)
        for sender in senders:
            with contextlib.suppress(Exception):
                await sender.sio.disconnect()
    seqs = stored_seqs(mongodb_admin, mongodb_database, "durable")
    assert seqs == list(range(1, len(seqs) + 1)), "seq has a gap"
    missing = {m["seq"] for m in acked} - set(seqs)
    assert not missing, f"acknowledged but not stored: {sorted(missing)[:10]}"

    with start_server(settings) as again:
        reader = await connect(again.url, "reader")
        history = await reader.join("durable", sinceSeq=0)
        await reader.sio.disconnect()
    assert history["reset"] is False
    assert [m["seq"] for m in history["history"]][: len(seqs)] == seqs
    texts = {m["seq"]: m["text"] for m in history["history"]}
    assert all(texts[m["seq"]] == m["text"] for m in acked)


async def test_two_servers_writing_one_room_give_unique_gap_free_seq(
    mongodb_uri: str, mongodb_database: str, mongodb_admin: MongoClient[dict[str, Any]]
) -> None:
    settings = settings_for(mongodb_uri, mongodb_database)
    with start_server(settings) as one, start_server(settings) as two:
        clients = [await connect(server.url, f"u{n}") for n, server in enumerate([one, two] * 3)]
        for client in clients:
            await client.join("shared")

        async def burst(client: Client) -> list[int]:
            acks = await asyncio.gather(
                *(client.call("send_message", {"room": "shared", "text": f"m{i}"}) for i in range(60))
            )
            assert all(ack["ok"] for ack in acks), acks
            return [ack["message"]["seq"] for ack in acks]

        results = await asyncio.gather(*(burst(client) for client in clients))
        for client in clients:
            await client.sio.disconnect()
    acked = sorted(seq for seqs in results for seq in seqs)
    assert acked == list(range(1, 361))
    assert stored_seqs(mongodb_admin, mongodb_database, "shared") == acked


async def test_mongod_down_means_unavailable_fast_and_recovery_without_restart(
    mongod_factory: MongodFactory,
) -> None:
    mongod = mongod_factory()
    with start_server(settings_for(mongod.uri, "chat")) as server:
        client = await connect(server.url, "alice")
        await client.join("r")
        assert (await client.call("send_message", {"room": "r", "text": "before"}))["ok"]

        mongod.stop()
        started = time.monotonic()
        refused = await client.call("send_message", {"room": "r", "text": "while down"})
        assert time.monotonic() - started < 3.5
        assert refused["ok"] is False and refused["error"]["code"] == "unavailable", refused
        assert await asyncio.to_thread(readiness, server) == 503

        mongod.start()
        deadline = time.monotonic() + 20
        while True:
            ack = await client.call("send_message", {"room": "r", "text": "after"})
            if ack["ok"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert ack["ok"], ack
        assert await asyncio.to_thread(readiness, server) == 200
        history = (await client.call("history", {"room": "r"}))["messages"]
        await client.sio.disconnect()
    assert [m["text"] for m in history] == ["before", "after"]
    assert [m["seq"] for m in history] == [1, 2]
