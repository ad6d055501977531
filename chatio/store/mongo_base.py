"""What chatio's smaller MongoDB stores share: a client of their own or a shared one, a database, and
a guard that bounds every operation by the store timeout and turns driver errors into
:class:`~chatio.store.Unavailable` (the same rules as :class:`~chatio.store.mongo.MongoStore`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Final

import pymongo
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from chatio.store import Unavailable

Document = dict[str, Any]

_BACKSTOP_SECONDS: Final = 0.25


def mongo_client(uri: str, *, timeout_seconds: float) -> AsyncMongoClient[Document]:
    """A client with chatio's timeouts: every operation, server selection and connecting."""
    timeout_ms = max(1, round(timeout_seconds * 1000))
    return AsyncMongoClient(
        uri,
        appname="chatio",
        timeoutMS=timeout_ms,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
    )


class MongoCollections:
    """Base class: ``self.db`` and :meth:`guard`. The client is not closed here: its owner closes it."""

    def __init__(self, client: AsyncMongoClient[Document], database: str, *, timeout_seconds: float) -> None:
        self.client = client
        self.db: AsyncDatabase[Document] = client.get_database(database)
        self._timeout = timeout_seconds

    @contextlib.asynccontextmanager
    async def guard(self, what: str) -> AsyncIterator[None]:
        """Bound the block by the store timeout; driver errors (but duplicate keys) become Unavailable."""
        try:
            async with asyncio.timeout(self._timeout + _BACKSTOP_SECONDS):
                with pymongo.timeout(self._timeout):
                    yield
        except (PyMongoError, TimeoutError) as exc:
            if isinstance(exc, DuplicateKeyError):
                raise
            reason = (
                "timed out" if isinstance(exc, TimeoutError) or getattr(exc, "timeout", False) else "failed"
            )
            raise Unavailable(f"MongoDB {what} {reason}: {type(exc).__name__}: {exc}") from exc

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        async with self.guard("ping"):
            await self.client.admin.command("ping")
