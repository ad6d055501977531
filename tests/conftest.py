"""Shared fixtures. Backends are parametrized so contract suites run against every implementation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import pytest

from chatio.store import Store
from chatio.store.memory import MemoryStore
from chatio.store.mongo import MongoStore
from tests.services import (  # noqa: F401 - fixtures, found by pytest through this module
    mongod_factory,
    mongodb_admin,
    mongodb_database,
    mongodb_uri,
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


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """asyncio's loop for every test; uvloop's too for tests marked ``both_loops``."""
    if item.get_closest_marker("both_loops") is None:
        return {"asyncio": asyncio.new_event_loop}
    import uvloop

    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
