"""``make cluster`` as a user runs it: one login works on every process, through HAProxy and directly."""

from __future__ import annotations

import json
import random
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.accounts_helpers import bearer, call, signed_up
from tests.harness import connect
from tests.prereqs import require
from tools.devcluster import find_haproxy
from tools.devservices import find_mongod, find_redis_server

pytestmark = [pytest.mark.redis, pytest.mark.mongo]

ROOT = Path(__file__).resolve().parents[2]


def devcluster(state: Path, ports: list[int], command: str) -> subprocess.CompletedProcess[str]:
    port, first_pod, redis, mongo, stats = ports
    options = [
        f"--dir={state}",
        f"--port={port}",
        "--pods=3",
        f"--first-pod-port={first_pod}",
        f"--redis-port={redis}",
        f"--mongo-port={mongo}",
        f"--stats-port={stats}",
    ]
    return subprocess.run(
        [sys.executable, "-m", "tools.devcluster", *options, command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    require(find_haproxy() is not None, "haproxy is not installed (make deps-system)")
    require(find_mongod() is not None and find_redis_server() is not None, "mongod or redis-server missing")
    ports = _quiet_ports(7)
    # The pods take three ports in a row (--first-pod-port), after HAProxy's.
    ports = [ports[0], ports[1], ports[4], ports[5], ports[6]]
    state = tmp_path / "cluster"
    started = devcluster(state, ports, "start")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield {"state": state, **json.loads((state / "state.json").read_text())}
    finally:
        stopped = devcluster(state, ports, "stop")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def _quiet_ports(count: int) -> list[int]:
    """``count`` consecutive free ports below the ephemeral range, where no outgoing connection (a pod's
    to redis, say) takes one between our choosing it and a process binding it."""
    low, _high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    while True:
        first = random.randrange(10_000, low - count)
        if not any(_busy(first + i) for i in range(count)):
            return list(range(first, first + count))


def _busy(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_one_login_works_on_every_process(cluster: dict[str, Any]) -> None:
    secret = cluster["state"] / "jwt-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text().strip()) >= 32
    pods = [p["address"] for p in cluster["processes"] if p["name"].startswith("chatio-")]
    assert len(pods) == 3
    async with aiohttp.ClientSession() as http:
        grant = await signed_up(http, cluster["url"], "seeduser")
        token = grant["accessToken"]
        # Through HAProxy (least connections spreads them) and on each process directly.
        for url in [cluster["url"]] * 6 + pods:
            status, body = await call(http, "GET", f"{url}/api/chat/rooms/public", headers=bearer(token))
            assert status == 200, (url, body)
    for url in [cluster["url"], *pods]:
        client = await connect(url, auth={"token": token})
        try:
            session = await client.expect("session")
            assert (session["user"], session["guest"]) == ("seeduser", False)
        finally:
            await client.sio.disconnect()


def test_a_wrong_command_says_how_to_run_the_cluster() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.devcluster", "launch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "make cluster-status" in result.stderr, result.stderr
