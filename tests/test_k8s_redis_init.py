"""k8s/redis.yaml's ``cluster-init.sh`` (the Job redis-cluster-init and the CronJob redis-cluster-repair),
run against six loopback ``redis-server --cluster-enabled yes`` nodes: it forms three masters with a
replica each, changes nothing when run again, and brings a node that came back empty into the cluster as a
replica while forgetting the one it replaced."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tools.devservices import RedisProcess

pytestmark = pytest.mark.redis

SCRIPT_SOURCE = Path(__file__).resolve().parent.parent / "k8s" / "redis.yaml"


def _script(tmp_path: Path) -> Path:
    config = next(
        document
        for document in yaml.safe_load_all(SCRIPT_SOURCE.read_text())
        if document and document["kind"] == "ConfigMap" and document["metadata"]["name"] == "redis-config"
    )
    script = tmp_path / "cluster-init.sh"
    script.write_text(config["data"]["cluster-init.sh"])
    return script


def _run(script: Path, nodes: list[RedisProcess]) -> str:
    env = {**os.environ, "NODES": ",".join(f"127.0.0.1:{node.port}" for node in nodes), "REPLICAS": "1"}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _roles(node: RedisProcess) -> list[str]:
    """Each known node's flags (``master``/``slave``, ``fail``...), as ``CLUSTER NODES`` shows them."""
    out = subprocess.run(
        ["redis-cli", "-p", str(node.port), "cluster", "nodes"], capture_output=True, text=True, timeout=10
    ).stdout
    return [line.split()[2] for line in out.splitlines() if line.strip()]


def _until(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_the_init_script_forms_and_repairs_a_redis_cluster(tmp_path: Path) -> None:
    script = _script(tmp_path)
    nodes = [RedisProcess(tmp_path / f"node{index}", cluster_node_timeout_ms=1000) for index in range(6)]
    started = list(nodes)
    try:
        for node in nodes:
            node.start()
        assert "forming a cluster" in _run(script, nodes)
        roles = _roles(nodes[0])
        assert sorted(role.replace("myself,", "") for role in roles) == ["master"] * 3 + ["slave"] * 3
        assert "forming" not in _run(script, nodes)  # a second run changes nothing

        # A replica's pod is scheduled afresh: a new, empty node where it was.
        replica = next(
            node for node in nodes if "slave" in next(r for r in _roles(node) if r.startswith("myself"))
        )
        replica.kill()
        _until(
            lambda: any("fail" in role for role in _roles(nodes[0] if nodes[0] is not replica else nodes[1]))
        )
        fresh = RedisProcess(tmp_path / "fresh", cluster_node_timeout_ms=1000)
        started.append(fresh)
        fresh.start()
        nodes[nodes.index(replica)] = fresh
        output = _run(script, nodes)
        assert "adding" in output and "forgetting" in output, output
        _until(
            lambda: (
                sorted(role.replace("myself,", "") for role in _roles(fresh))
                == ["master"] * 3 + ["slave"] * 3
            )
        )
    finally:
        for node in started:
            node.stop()
