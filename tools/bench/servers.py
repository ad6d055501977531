"""Servers under test: started on 127.0.0.1 pinned to one CPU, watched by PID, stopped by PID.

Each server is started through ``preexec_fn``, which in the child, before ``exec``, does what
``taskset -c <cpu> prlimit --nofile=<hard> ...`` would: pin it to its CPU and raise its soft
RLIMIT_NOFILE to the hard limit (10,000 connections need more than the usual 1,024).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from chatio.loadtest import framing
from chatio.loadtest.client import Connection, Tally
from chatio.loadtest.stats import rss_kib

HOST: Final = "127.0.0.1"
READY_TIMEOUT_SECONDS: Final = 20.0
STOP_TIMEOUT_SECONDS: Final = 10.0

# chatio's settings for the bench: limits that would refuse the load are opened up, everything else is
# the default. 100,000 is the highest CHATIO_RATE_LIMIT_PER_MINUTE accepts (per user: the bench's users
# send a few messages a second each).
CHATIO_BENCH_ENV: Final = {
    "CHATIO_RATE_LIMIT_PER_MINUTE": "100000",
    "CHATIO_ROOM_MAX_MEMBERS": "100000",
    "CHATIO_LOG_LEVEL": "WARNING",
    "CHATIO_POD_NAME": "bench",
}


@dataclasses.dataclass(frozen=True, slots=True)
class ServerKind:
    """How to start one kind of server; ``module`` runs with ``python -m``."""

    name: str
    module: str
    description: str
    environ: Mapping[str, str] = dataclasses.field(default_factory=dict)
    port_flag: str | None = "--port"  # None: the port goes in CHATIO_PORT
    #: Runs the server instead of ``python -m module`` (the Node server), with ``--host`` and ``--port``.
    program: tuple[str, ...] = ()
    #: Whether py-spy can profile it (a Python process).
    python: bool = True

    def command(self, port: int) -> tuple[list[str], dict[str, str]]:
        environ = {key: value for key, value in os.environ.items() if not key.startswith("CHATIO_")}
        environ.update(self.environ)
        argv = list(self.program) or [sys.executable, "-m", self.module]
        if self.port_flag is None:
            environ.update(CHATIO_HOST=HOST, CHATIO_PORT=str(port))
        else:
            argv += ["--host", HOST, self.port_flag, str(port)]
        return argv, environ


CHATIO: Final = ServerKind(
    "chatio", "chatio", "python -m chatio, default settings but for opened limits", CHATIO_BENCH_ENV, None
)
BASELINE: Final = ServerKind(
    "python-socketio",
    "tools.bench.baseline",
    "plain python-socketio 5 on aiohttp (tools/bench/baseline.py)",
)
NODE_DIR: Final = Path(__file__).resolve().parent / "node"
NODE: Final = ServerKind(
    "Node socket.io",
    "server.mjs",
    "Node's socket.io 4.8 with the same wire shape (tools/bench/node/server.mjs, its own lockfile)",
    program=(shutil.which("node") or "node", str(NODE_DIR / "server.mjs")),
    python=False,
)
FIREHOSE: Final = ServerKind(
    "firehose", "tools.bench.firehose", "calibration server, encode once + raw frame writes"
)


class Server:
    """A running server process."""

    def __init__(self, kind: ServerKind, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.kind = kind
        self.proc = proc
        self.port = port
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def output(self, last: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-last:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_SECONDS; by this process's PID only."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        with contextlib.suppress(OSError):
            self.log.unlink()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _child_setup(cpu: int | None) -> Callable[[], None]:
    def setup() -> None:
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return setup


async def start(kind: ServerKind, cpu: int | None) -> Server:
    """Start ``kind`` on a free port, pinned to ``cpu``; return once it answers an Engine.IO handshake."""
    port = free_port()
    argv, environ = kind.command(port)
    handle, name = tempfile.mkstemp(prefix=f"chatio-bench-{kind.name}-", suffix=".log")
    with os.fdopen(handle, "wb") as log:
        # Popen returns as soon as the child is forked; readiness is awaited below.
        proc = subprocess.Popen(  # noqa: ASYNC220
            argv, env=environ, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_child_setup(cpu)
        )
    server = Server(kind, proc, port, Path(name))
    try:
        await _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


async def _wait_ready(server: Server) -> None:
    """Ready means a Socket.IO connection over WebSocket opens (then it is closed again)."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    target = framing.Target.parse(server.url)
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.kind.name} exited at start:\n{server.output()}")
        try:
            probe = await Connection.open(
                target, {"username": "bench-probe"}, Tally(), sampling=False, timeout=2
            )
        except (OSError, TimeoutError, framing.WireError) as exc:
            last = exc
            await asyncio.sleep(0.1)
        else:
            probe.close()
            return
    raise RuntimeError(
        f"{server.kind.name} not ready after {READY_TIMEOUT_SECONDS}s ({last!r}):\n{server.output()}"
    )
