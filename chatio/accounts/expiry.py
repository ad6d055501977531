"""Connections live as long as their credential: :class:`ExpiryClock` calls ``on_expired(sid)`` when the
access token a socket connected (or last refreshed) with expires, unless it was refreshed in time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from chatio.background import Background

log = logging.getLogger(__name__)


class ExpiryClock:
    def __init__(self, on_expired: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        self._on_expired = on_expired
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks = Background(log, "ending an expired session failed")

    def watch(self, sid: str, expires_at: float | None) -> None:
        """(Re)arm the timer of ``sid`` for ``expires_at`` (Unix seconds); None disarms it."""
        self.forget(sid)
        if expires_at is None:
            return
        delay = max(0.0, expires_at - time.time())
        self._timers[sid] = asyncio.get_running_loop().call_later(delay, self._expire, sid)

    def forget(self, sid: str) -> None:
        timer = self._timers.pop(sid, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, sid: str) -> None:
        if self._timers.pop(sid, None) is None:
            return
        self._tasks.spawn(self._on_expired(sid))

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
