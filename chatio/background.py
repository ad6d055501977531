"""Coroutines started in the background: held until they end, their failures logged, never silent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from typing import Any


class Background:
    """The background tasks of one owner. ``failure`` is what the log says when one of them fails."""

    def __init__(self, logger: logging.Logger, failure: str) -> None:
        self._log = logger
        self._failure = failure
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        """The tasks still running (a copy: an owner may cancel them while iterating)."""
        return iter(list(self._tasks))

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error(self._failure, exc_info=task.exception())
