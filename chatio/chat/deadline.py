"""The backstop deadline on every store call the chat core awaits, so that no ack can hang."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from chatio import errors
from chatio.errors import ChatError
from chatio.store import Unavailable

T = TypeVar("T")


async def within(seconds: float, call: Awaitable[T]) -> T:
    """``call``'s result; :class:`ChatError` ``unavailable`` when the store is down or late by ``seconds``."""
    # The store enforces its own deadline; this is the backstop. A timeout scope rather than wait_for: no
    # task per call on the hot path.
    try:
        async with asyncio.timeout(seconds):
            return await call
    except (Unavailable, TimeoutError) as exc:
        raise ChatError(errors.UNAVAILABLE, "storage is unavailable, try again") from exc
