"""Shared fixtures. Backends are parametrized so contract suites run against every implementation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp
import pytest

from chatio.store import Store
from chatio.store.memory import MemoryStore
from chatio.store.mongo import MongoStore
from tests.services import (  # noqa: F401 - fixtures, found by pytest through this module
    any_redis_url,
    mongod_factory,
    mongodb_admin,
    mongodb_database,
    mongodb_uri,
    redis_cluster_factory,
    redis_cluster_url,
    redis_url,
)

STORE_BACKENDS = ["memory", pytest.param("mongo", marks=pytest.mark.mongo)]


@pytest.fixture(params=STORE_BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    backend: Store
    if request.param == "mongo":
        uri = request.getfixturevalue("mongodb_uri")
        backend = MongoStore(uri, request.getfixturevalue("mongodb_database"))
    else:
        backend = MemoryStore()
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


#: Markers of tests that need a real service or program; a test with none of them, in a contract suite, runs
#: against an embedded backend in milliseconds and joins the fast tier (``make test-fast``, ``-m unit``).
SERVICE_MARKERS = ("mongo", "redis", "node", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        in_contract = "contract" in item.nodeid.split("::")[0]
        if in_contract and not any(item.get_closest_marker(name) for name in SERVICE_MARKERS):
            item.add_marker(pytest.mark.unit)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for the test's duration (REST calls against in-process servers)."""
    async with aiohttp.ClientSession() as session:
        yield session


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """asyncio's loop for every test; uvloop's too for tests marked ``both_loops``."""
    if item.get_closest_marker("both_loops") is None:
        return {"asyncio": asyncio.new_event_loop}
    import uvloop

    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
