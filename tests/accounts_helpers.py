"""Accounts for tests: a cheap password hasher, registering and logging in over the real REST API."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

import aiohttp
import jwt
import pytest
import socketio
from argon2 import PasswordHasher
from pymongo import AsyncMongoClient

from chatio.accounts.passwords import Passwords
from chatio.store.mongo_base import Document, mongo_client

PASSWORD = "correct horse battery"


def fast_passwords() -> Passwords:
    """argon2id still, with the smallest cost: the tests exercise the flow, not the hash's strength."""
    return Passwords(hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kwargs) as response:
        return response.status, await response.json()


async def register(http: aiohttp.ClientSession, base: str, username: str, password: str = PASSWORD) -> Any:
    status, user = await call(
        http, "POST", f"{base}/api/chat/users", json={"username": username, "password": password}
    )
    assert status == 201, user
    return user


async def login(http: aiohttp.ClientSession, base: str, username: str, password: str = PASSWORD) -> Any:
    status, grant = await call(
        http, "POST", f"{base}/api/chat/auth/login", json={"username": username, "password": password}
    )
    assert status == 200, grant
    return grant


async def signed_up(http: aiohttp.ClientSession, base: str, username: str) -> Any:
    """Register ``username`` and log in: the grant (``accessToken``, ``refreshToken``, ``user``)."""
    await register(http, base, username)
    return await login(http, base, username)


async def refusal(url: str, auth: Any) -> Any:
    """Connect with ``auth``, expecting a refusal; return the ``connect_error`` payload."""
    client = socketio.AsyncClient(reconnection=False)
    reasons: list[Any] = []
    client.on("connect_error", reasons.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, auth=auth, transports=["websocket"], wait_timeout=5)
    assert reasons, "refused without a connect_error"
    return reasons[0]


def sign(secret: str, user_id: str, username: str, *, expires_in: float, **extra: Any) -> str:
    """A token signed with the server's own key, as the server would issue it, but with any lifetime."""
    now = int(time.time())
    claims = {"sub": user_id, "name": username, "guest": False, "iat": now, "exp": now + expires_in}
    return jwt.encode({"iss": "chatio", "aud": "chatio", **claims, **extra}, secret, algorithm="HS256")


class _Backend(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


B = TypeVar("B", bound=_Backend)


@contextlib.asynccontextmanager
async def started_backend(
    request: pytest.FixtureRequest,
    memory: Callable[[], B],
    mongo: Callable[[AsyncMongoClient[Document], str], B],
) -> AsyncIterator[B]:
    """The backend a ``["memory", "mongo"]``-parametrized fixture asks for, started twice (start must be
    idempotent) on a database of its own, and closed afterwards with its client."""
    client: AsyncMongoClient[Document] | None = None
    if request.param == "mongo":
        client = mongo_client(request.getfixturevalue("mongodb_uri"), timeout_seconds=5.0)
        backend = mongo(client, request.getfixturevalue("mongodb_database"))
    else:
        backend = memory()
    await backend.start()
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()
        if client is not None:
            await client.close()
