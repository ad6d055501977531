"""What chatio's smaller MongoDB stores share: a client of their own or a shared one, a database, and
a guard that bounds every operation by the store timeout and turns driver errors into
:class:`~chatio.store.Unavailable` (the same rules as :class:`~chatio.store.mongo.MongoStore`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import pymongo
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError
from pymongo.monitoring import CommandListener
from pymongo.write_concern import WriteConcern

from chatio.store.mongo_messages import unavailable

Document = dict[str, Any]

_BACKSTOP_SECONDS: Final = 0.25
#: How long creating the indexes at boot may take, however short the store timeout: a loaded mongod is slow
#: to answer, and an index new to a large collection takes time to build (Kubernetes' liveness probe waits
#: about 40 s for a process to answer).
INDEX_CREATION_SECONDS: Final = 20.0


def mongo_client(
    uri: str, *, timeout_seconds: float, event_listeners: Sequence[CommandListener] = ()
) -> AsyncMongoClient[Document]:
    """A client with chatio's timeouts: every operation, server selection and connecting."""
    timeout_ms = max(1, round(timeout_seconds * 1000))
    return AsyncMongoClient(
        uri,
        appname="chatio",
        timeoutMS=timeout_ms,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        event_listeners=list(event_listeners),
    )


def write_concern(name: str) -> WriteConcern:
    """``majority`` or ``1``: every chatio write is acknowledged before it is reported as stored."""
    if name not in ("majority", "1"):
        raise ValueError(f"write concern {name!r}: chatio needs 'majority' or '1'")
    return WriteConcern(w="majority" if name == "majority" else 1)


@contextlib.asynccontextmanager
async def guarded(what: str, timeout_seconds: float) -> AsyncIterator[None]:
    """Bound the block by the store timeout; driver errors (but duplicate keys) become Unavailable."""
    try:
        async with asyncio.timeout(timeout_seconds + _BACKSTOP_SECONDS):
            with pymongo.timeout(timeout_seconds):
                yield
    except (PyMongoError, TimeoutError) as exc:
        if isinstance(exc, DuplicateKeyError):
            raise
        raise unavailable(what, exc) from exc


@contextlib.asynccontextmanager
async def creating_indexes(client: AsyncMongoClient[Document], timeout_seconds: float) -> AsyncIterator[None]:
    """:func:`guarded` for the index creation at boot, which gets :data:`INDEX_CREATION_SECONDS` at least.
    The server is pinged first within the store timeout: one that cannot be reached fails as fast as a
    request would (a longer operation timeout would also lengthen server selection)."""
    async with guarded("index creation", timeout_seconds):
        await client.admin.command("ping")
    async with guarded("index creation", max(timeout_seconds, INDEX_CREATION_SECONDS)):
        yield


class MongoCollections:
    """Base class: ``self.db`` and :meth:`guard`. The client is not closed here: its owner closes it."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        database: str,
        *,
        timeout_seconds: float,
        write_concern_name: str = "majority",
    ) -> None:
        self.client = client
        self.db: AsyncDatabase[Document] = client.get_database(
            database, write_concern=write_concern(write_concern_name)
        )
        self._timeout = timeout_seconds

    def guard(self, what: str) -> contextlib.AbstractAsyncContextManager[None]:
        """:func:`guarded` with this store's timeout."""
        return guarded(what, self._timeout)

    def indexing(self) -> contextlib.AbstractAsyncContextManager[None]:
        """:func:`creating_indexes` with this store's timeout."""
        return creating_indexes(self.client, self._timeout)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        async with self.guard("ping"):
            await self.client.admin.command("ping")
