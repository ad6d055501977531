"""The yardstick: a plain python-socketio server with chatio's wire shape and none of chatio's code.

``python -m tools.bench.baseline --port 8090`` serves ``join_room {room}`` and ``send_message {room,
text, clientMsgId?}`` exactly as docs/protocol.md shapes them (acks ``{ok, ...}``, the ``message``
broadcast to the room's other sockets), with an in-memory seq per room and python-socketio's own
``emit(..., room=..., skip_sid=...)``. No validation, no rate limit, no metrics, no store: whatever chatio
costs beyond this is chatio's own. python-socketio runs with its defaults; only the event loop is the
same as chatio's (uvloop when installed, unless ``--loop asyncio``), so the ratio compares servers, not
event loops.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import time
from collections import defaultdict
from typing import Any

import socketio
from aiohttp import web


def create_app() -> web.Application:
    """One plain ``socketio.AsyncServer(async_mode='aiohttp')`` with the two commands."""
    sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
    users: dict[str, str] = {}
    seqs: defaultdict[str, int] = defaultdict(int)

    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> bool:
        users[sid] = str(auth.get("username", "anonymous")) if isinstance(auth, dict) else "anonymous"
        return True

    async def disconnect(sid: str, *args: Any) -> None:
        users.pop(sid, None)

    async def join_room(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        room = str(data["room"])
        await sio.enter_room(sid, room)
        return {
            "ok": True,
            "room": {"id": room, "name": room, "public": True},
            "members": [],
            "history": [],
            "reset": False,
        }

    async def send_message(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        room = str(data["room"])
        seqs[room] += 1
        user = users.get(sid, "anonymous")
        message = {
            "id": secrets.token_hex(12),
            "room": room,
            "seq": seqs[room],
            "user": user,
            "userId": user,
            "text": data["text"],
            "ts": time.time_ns() // 1_000_000,
            "clientMsgId": data.get("clientMsgId"),
        }
        await sio.emit("message", message, room=room, skip_sid=sid)
        return {"ok": True, "message": message}

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)
    sio.on("join_room", join_room)
    sio.on("send_message", send_message)
    app = web.Application()
    sio.attach(app)
    return app


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(create_app(), handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=4096).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"baseline python-socketio serving on http://{host}:{port}", flush=True)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve(args.host, args.port))
    else:
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
