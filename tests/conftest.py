"""Shared fixtures. Backends are parametrized so contract suites run against every implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
