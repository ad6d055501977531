"""``python -m tools.devcluster start|stop|status|run``: the Kubernetes topology on one machine.

``start`` launches, in the background, a supervisor that runs ``redis-server`` (or, with
``--redis-cluster``, a Redis Cluster of six: three masters with a replica each on ``--redis-port`` and the
five ports above it, and the sharded fan-out), ``mongod`` (a one-member replica set), ``--pods`` chatio
processes (``chatio-1`` on 8081, ``chatio-2`` on 8082, ...) sharing both,
and HAProxy on http://localhost:8080 in front of them (``tools/haproxy.cfg.template``: least connections,
Engine.IO sessions kept on their process, readiness checks on ``/readyz``). Like a Deployment, the
supervisor starts a chatio process again when it dies. ``stop`` ends it all; ``status`` shows who runs
where; ``run`` is the supervisor in the foreground (Ctrl-C stops it).

Everything binds 127.0.0.1 and keeps its data, logs and the cluster's one ``CHATIO_JWT_SECRET`` in
``.cluster/`` beside the checkout (``rm -rf .cluster`` forgets the chat history and signs everyone out).
Every process is stopped by its own PID. See docs/cluster.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

HOW_TO_RUN: Final = (
    "run it from the checkout through make (make cluster, make cluster-status, make cluster-stop), "
    "which uses the project's .venv"
)

try:
    from tools.devservices import MongodProcess, RedisCluster, RedisProcess, ServiceError, terminate
except ModuleNotFoundError as missing:  # a Python without the project's packages (pymongo, redis)
    raise SystemExit(f"devcluster: {missing}: {HOW_TO_RUN}") from None

TEMPLATE: Final = Path(__file__).with_name("haproxy.cfg.template")
#: Beside the checkout, whatever the current folder: ``status`` and ``stop`` find what ``start`` began.
STATE_DIR: Final = Path(__file__).resolve().parent.parent / ".cluster"
READY_TIMEOUT_SECONDS: Final = 60.0
STOP_TIMEOUT_SECONDS: Final = 30.0
RESTART_DELAY_SECONDS: Final = 2.0


def find_haproxy() -> Path | None:
    """HAProxy from ``$PATH`` or Debian's /usr/sbin (not on a normal user's ``$PATH``), else None."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    return None if found is None else Path(found)


def render_haproxy_config(bind: str, servers: Sequence[tuple[str, str]], stats_bind: str) -> str:
    """The HAProxy configuration for chatio processes ``(name, host:port)`` behind ``bind``."""
    lines = "\n".join(f"    server {name} {address} check" for name, address in servers)
    return string.Template(TEMPLATE.read_text()).substitute(bind=bind, servers=lines, stats_bind=stats_bind)


def _wait_port(port: int, deadline: float, alive: Any, what: str) -> None:
    while True:
        if not alive():
            raise ServiceError(f"{what} exited during startup")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} did not listen on 127.0.0.1:{port} in time")
        time.sleep(0.05)


class Balancer:
    """HAProxy in the foreground (``-db``), owned by PID; its log goes to ``log_path``."""

    def __init__(self, config: str, workdir: Path, port: int, *, binary: Path | None = None) -> None:
        found = binary or find_haproxy()
        if found is None:
            raise ServiceError("haproxy not found: apt-get install haproxy (make deps-system)")
        self.binary = found
        self.port = port
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "haproxy.cfg"
        self.config_path.write_text(config)
        self.log_path = workdir / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check(self) -> None:
        """Raise :class:`ServiceError` with HAProxy's words unless it accepts the configuration."""
        result = subprocess.run(
            [str(self.binary), "-c", "-f", str(self.config_path)], capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0:
            raise ServiceError(f"haproxy refuses {self.config_path}:\n{result.stdout}{result.stderr}")

    def start(self, timeout: float = 15.0) -> None:
        self.check()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "-db", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = self.process
        _wait_port(self.port, time.monotonic() + timeout, lambda: process.poll() is None, "haproxy")

    def stop(self, timeout: float = 10.0) -> None:
        terminate(self.process, timeout)


class Pod:
    """One ``python -m chatio`` with the given ``CHATIO_*`` settings; ``start()`` waits for /healthz."""

    def __init__(self, name: str, port: int, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.port = port
        self.env = env
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chatio"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not _http_ok(f"{self.url}/healthz"):
            if not self.alive or time.monotonic() > deadline:
                raise ServiceError(f"{self.name} did not start; see {self.log_path}")
            time.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> None:
        terminate(self.process, timeout)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where everything listens and lives."""

    state_dir: Path
    port: int = 8080
    pods: int = 3
    first_pod_port: int = 8081
    redis_port: int = 6390
    mongo_port: int = 27027
    stats_port: int = 8404
    redis_cluster: bool = False

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def secret_file(self) -> Path:
        return self.state_dir / "jwt-secret"


def cluster_secret(layout: Layout) -> str:
    """The cluster's ``CHATIO_JWT_SECRET``: made once, kept in the state folder (mode 0600), so that a
    token signed by one process is good on every other, and across restarts of the cluster."""
    path = layout.secret_file
    with contextlib.suppress(FileNotFoundError):
        kept = path.read_text().strip()
        if len(kept) >= 32:
            return kept
    path.parent.mkdir(parents=True, exist_ok=True)
    made = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(made + "\n")
    return made


class Supervisor:
    """Starts the cluster, keeps its chatio processes running, and stops it all on SIGTERM or SIGINT."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.redis: RedisProcess | RedisCluster
        if layout.redis_cluster:
            ports = range(layout.redis_port, layout.redis_port + 6)
            self.redis = RedisCluster(layout.state_dir / "redis-cluster", ports=ports, node_timeout_ms=2000)
            self.redis_url = self.redis.url
        else:
            self.redis = RedisProcess(layout.state_dir / "redis", port=layout.redis_port)
            self.redis_url = f"redis://127.0.0.1:{layout.redis_port}/0"
        self.mongod = MongodProcess(layout.state_dir / "mongod", port=layout.mongo_port)
        self.secret = cluster_secret(layout)
        self.pods = [
            Pod(f"chatio-{i}", layout.first_pod_port + i - 1, self._pod_env(i), layout.state_dir)
            for i in range(1, layout.pods + 1)
        ]
        servers = [(pod.name, f"127.0.0.1:{pod.port}") for pod in self.pods]
        config = render_haproxy_config(f"127.0.0.1:{layout.port}", servers, f"127.0.0.1:{layout.stats_port}")
        self.balancer = Balancer(config, layout.state_dir, layout.port)
        self._stopping = False

    def _pod_env(self, index: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "CHATIO_HOST": "127.0.0.1",
                "CHATIO_PORT": str(self.layout.first_pod_port + index - 1),
                "CHATIO_POD_NAME": f"chatio-{index}",
                "CHATIO_REDIS_URL": self.redis_url,
                "CHATIO_REDIS_FANOUT": env.get(
                    "CHATIO_REDIS_FANOUT", "sharded" if self.layout.redis_cluster else "classic"
                ),
                "CHATIO_MONGODB_URI": (
                    f"mongodb://127.0.0.1:{self.layout.mongo_port}/?replicaSet=rs0&directConnection=true"
                ),
                # HAProxy sees /readyz fail within ~2 s (fall 2, inter 1s): keep answering until then.
                "CHATIO_DRAIN_DELAY_SECONDS": env.get("CHATIO_DRAIN_DELAY_SECONDS", "2.5"),
                "CHATIO_PRESENCE_HEARTBEAT_SECONDS": env.get("CHATIO_PRESENCE_HEARTBEAT_SECONDS", "2"),
                # HAProxy adds X-Forwarded-For, as the Ingress does in Kubernetes.
                "CHATIO_TRUSTED_PROXY_HOPS": "1",
                # One signing key for every process (yours if you set one): a login works on all of them.
                "CHATIO_JWT_SECRET": env.get("CHATIO_JWT_SECRET", self.secret),
            }
        )
        return env

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self._start_all()
            while not self._stopping:
                self._keep_pods_running()
                time.sleep(0.5)
        finally:
            self._stop_all()

    def _on_signal(self, signum: int, _frame: object) -> None:
        print(f"devcluster: {signal.Signals(signum).name}: stopping", flush=True)
        self._stopping = True

    def _start_all(self) -> None:
        self.layout.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_state(ready=False)
        self.redis.start()
        self.mongod.start()
        for name, service in self._services():
            print(f"devcluster: {name} on 127.0.0.1:{service.port} (pid {service.pid})", flush=True)
        for pod in self.pods:
            pod.start()
            print(f"devcluster: {pod.name} on {pod.url} (pid {pod.process and pod.process.pid})", flush=True)
        self.balancer.start()
        print(f"devcluster: haproxy on {self.balancer.url}", flush=True)
        self._write_state(ready=True)

    def _keep_pods_running(self) -> None:
        for pod in self.pods:
            if pod.process is not None and not pod.alive:
                status = pod.process.returncode
                print(f"devcluster: {pod.name} exited ({status}); starting it again", flush=True)
                time.sleep(RESTART_DELAY_SECONDS)
                if self._stopping:
                    return
                try:
                    pod.start()
                except ServiceError as exc:
                    print(f"devcluster: {exc}", flush=True)
                self._write_state(ready=True)

    def _stop_all(self) -> None:
        self._write_state(ready=False)
        self.balancer.stop()
        for pod in self.pods:  # drain them all at once, then wait for each
            if pod.process is not None and pod.alive:
                pod.process.send_signal(signal.SIGTERM)
        for pod in self.pods:
            pod.stop()
        self.redis.stop()
        self.mongod.stop()
        self.layout.state_file.unlink(missing_ok=True)
        print("devcluster: stopped", flush=True)

    def _services(self) -> list[tuple[str, RedisProcess | MongodProcess]]:
        redis: list[tuple[str, RedisProcess | MongodProcess]] = (
            [(f"redis-{index}", node) for index, node in enumerate(self.redis.nodes, 1)]
            if isinstance(self.redis, RedisCluster)
            else [("redis-server", self.redis)]
        )
        return [*redis, ("mongod", self.mongod)]

    def _write_state(self, *, ready: bool) -> None:
        processes = [
            *(
                {"name": name, "pid": service.pid, "address": f"127.0.0.1:{service.port}"}
                for name, service in self._services()
            ),
            *(
                {"name": pod.name, "pid": pod.process and pod.process.pid, "address": pod.url}
                for pod in self.pods
            ),
            {
                "name": "haproxy",
                "pid": self.balancer.process and self.balancer.process.pid,
                "address": self.balancer.url,
            },
        ]
        state = {"supervisor": os.getpid(), "ready": ready, "url": self.balancer.url, "processes": processes}
        temporary = self.layout.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self.layout.state_file)


# --- command line ------------------------------------------------------------------------------------


def _read_state(layout: Layout) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(layout.state_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state


def _pid_runs(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` is alive and is what we started (its command line holds ``marker``)."""
    if not pid:
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in command


def start(layout: Layout) -> int:
    state = _read_state(layout)
    if state is not None and _pid_runs(state.get("supervisor"), "tools.devcluster"):
        print(f"devcluster: already running at {state['url']} (make cluster-status)")
        return 1
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    layout.state_file.unlink(missing_ok=True)
    log_path = layout.state_dir / "supervisor.log"
    with log_path.open("ab") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "tools.devcluster", *_layout_args(layout), "run"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command and the terminal's signals
        )
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        state = _read_state(layout)
        if state is not None and state.get("ready"):
            print(
                f"devcluster: chat on {state['url']} (HAProxy stats: http://127.0.0.1:{layout.stats_port}/)"
            )
            return status(layout)
        if supervisor.poll() is not None:
            break
        time.sleep(0.2)
    else:
        supervisor.send_signal(signal.SIGTERM)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    print(f"devcluster: the cluster did not start; {log_path}:\n{tail}", file=sys.stderr)
    return 1


def stop(layout: Layout) -> int:
    state = _read_state(layout)
    if state is None:
        print("devcluster: not running")
        return 0
    supervisor = state.get("supervisor")
    if isinstance(supervisor, int) and _pid_runs(supervisor, "tools.devcluster"):
        os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _pid_runs(supervisor, "tools.devcluster") and time.monotonic() < deadline:
            time.sleep(0.2)
    if isinstance(supervisor, int) and _pid_runs(supervisor, "tools.devcluster"):
        os.kill(supervisor, signal.SIGKILL)
    # Whatever the supervisor could not stop (it was killed, say): each process by its own PID.
    markers = {"redis-server": "redis-server", "mongod": "mongod", "haproxy": "haproxy"}
    for process in state.get("processes", []):
        pid, name = process.get("pid"), process.get("name", "")
        marker = "redis-server" if name.startswith("redis") else markers.get(name, "-m chatio")
        if isinstance(pid, int) and _pid_runs(pid, marker):
            print(f"devcluster: {name} (pid {pid}) outlived the supervisor; killing it")
            os.kill(pid, signal.SIGKILL)
    layout.state_file.unlink(missing_ok=True)
    print("devcluster: stopped")
    return 0


def status(layout: Layout) -> int:
    state = _read_state(layout)
    if state is None or not _pid_runs(state.get("supervisor"), "tools.devcluster"):
        print("devcluster: not running")
        return 1
    print(f"{'process':<14} {'pid':>8}  {'address':<24} state")
    for process in state["processes"]:
        address = process["address"]
        if address.startswith("http") and process["name"].startswith("chatio"):
            health = "ready" if _http_ok(f"{address}/readyz") else "not ready"
        else:
            health = "up" if process["pid"] and Path(f"/proc/{process['pid']}").exists() else "down"
        print(f"{process['name']:<14} {process['pid'] or '-':>8}  {address:<24} {health}")
    return 0


def _layout_args(layout: Layout) -> list[str]:
    return [
        f"--dir={layout.state_dir}",
        f"--port={layout.port}",
        f"--pods={layout.pods}",
        f"--first-pod-port={layout.first_pod_port}",
        f"--redis-port={layout.redis_port}",
        f"--mongo-port={layout.mongo_port}",
        f"--stats-port={layout.stats_port}",
        *(["--redis-cluster"] if layout.redis_cluster else []),
    ]


class _Parser(argparse.ArgumentParser):
    """Says how to run the cluster's commands when they are called wrongly."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n{self.prog}: {HOW_TO_RUN}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(
        prog="python -m tools.devcluster",
        description=__doc__.split("\n")[0],
        epilog=f"Or {HOW_TO_RUN}.",
    )
    parser.add_argument(
        "--dir", type=Path, default=STATE_DIR, help=f"state, data and logs (default {STATE_DIR})"
    )
    parser.add_argument("--port", type=int, default=8080, help="HAProxy's port")
    parser.add_argument("--pods", type=int, default=3, help="chatio processes")
    parser.add_argument("--first-pod-port", type=int, default=8081)
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--mongo-port", type=int, default=27027)
    parser.add_argument("--stats-port", type=int, default=8404)
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="a Redis Cluster of six nodes (three masters, a replica each) and the sharded fan-out",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "run"])
    args = parser.parse_args(argv)
    layout = Layout(
        state_dir=args.dir.resolve(),
        port=args.port,
        pods=args.pods,
        first_pod_port=args.first_pod_port,
        redis_port=args.redis_port,
        mongo_port=args.mongo_port,
        stats_port=args.stats_port,
        redis_cluster=args.redis_cluster,
    )
    if args.command == "run":
        try:
            Supervisor(layout).run()
        except ServiceError as exc:
            print(f"devcluster: {exc}", file=sys.stderr)
            return 1
        return 0
    commands = {"start": start, "stop": stop, "status": status}
    return commands[args.command](layout)


if __name__ == "__main__":
    raise SystemExit(main())
