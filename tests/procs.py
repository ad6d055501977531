"""Real processes for tests: a chatio server on a free 127.0.0.1 port, and bounded helper commands.

Every process started here is stopped by its own PID (or the process group it leads), never by name.

    server = start_server({"CHATIO_POD_NAME": "pod-a"})
    try:
        ...  # talk to server.url
    finally:
        server.stop()
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
READY_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0
_START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """A running ``python -m chatio``; output goes to a log file readable with :meth:`output`."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.host = HOST
        self._log_path = log_path
        self._final_output: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        """Everything the server wrote to stdout and stderr so far (also after :meth:`stop`)."""
        if self._final_output is not None:
            return self._final_output
        try:
            return self._log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, then SIGKILL if the process outlives ``timeout``; return its exit status."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self._final_output is None:
            self._final_output = self.output()
            self._log_path.unlink(missing_ok=True)
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class ServerStartError(RuntimeError):
    """The server exited or did not answer ``/healthz`` in time; the message carries its output."""


def server_env(overrides: Mapping[str, str] | None = None, port: int | None = None) -> dict[str, str]:
    """This process's environment without any inherited ``CHATIO_*`` setting, plus host, port, overrides."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHATIO_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["CHATIO_HOST"] = HOST
    if port is not None:
        env["CHATIO_PORT"] = str(port)
    env.update(overrides or {})
    return env


def start_server(
    env_overrides: Mapping[str, str] | None = None,
    *,
    ready_timeout: float = READY_TIMEOUT_SECONDS,
) -> ServerProcess:
    """Start ``python -m chatio`` on a free port and return it once ``GET /healthz`` answers 200.

    ``env_overrides`` are ``CHATIO_*`` settings (``CHATIO_PORT`` picks a fixed port). Raises
    :class:`ServerStartError` with the server's output when it exits early or is not healthy in time.
    """
    fixed_port = (env_overrides or {}).get("CHATIO_PORT")
    attempts = 1 if fixed_port else _START_ATTEMPTS
    for attempt in range(1, attempts + 1):
        port = int(fixed_port) if fixed_port else free_port()
        server = _spawn(server_env(env_overrides, port), port)
        try:
            _wait_healthy(server, ready_timeout)
        except ServerStartError:
            server.stop()
            port_taken = "address already in use" in server.output().lower()
            if port_taken and attempt < attempts:
                continue
            raise
        return server
    raise AssertionError("unreachable")  # the loop returns or raises


def _spawn(env: dict[str, str], port: int) -> ServerProcess:
    fd, log_name = tempfile.mkstemp(prefix="chatio-server-", suffix=".log")
    os.close(fd)
    log_path = Path(log_name)
    # O_APPEND: the child's writes never race with our reads of the same file.
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chatio"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return ServerProcess(proc, port, log_path)


def _wait_healthy(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            status = server.proc.returncode
            raise ServerStartError(
                f"chatio exited with status {status} before it was healthy:\n{server.output()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=1.0) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise ServerStartError(f"chatio did not answer GET /healthz within {timeout:g} s:\n{server.output()}")


def describe_run(
    result: subprocess.CompletedProcess[str] | subprocess.TimeoutExpired, server: ServerProcess | None = None
) -> str:
    """A failure message: a command's stdout and stderr, and the tail of the server's output."""
    parts = []
    for name, stream in (("stdout", result.stdout), ("stderr", result.stderr)):
        text = stream.decode(errors="replace") if isinstance(stream, bytes) else stream or ""
        parts.append(f"--- {name} ---\n{text}")
    if server is not None:
        parts.append(f"--- server output (last 4000 characters) ---\n{server.output()[-4000:]}")
    return "\n".join(parts)


def run_bounded(
    command: Sequence[str], *, cwd: Path, timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` and capture its output; on timeout kill its whole process group and raise.

    The command leads a new process group so that anything it starts (a browser, say) is killed with it.
    """
    proc = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise subprocess.TimeoutExpired(proc.args, timeout, output=stdout, stderr=stderr) from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
