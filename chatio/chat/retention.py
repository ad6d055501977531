"""Retention: messages older than their room's retention are removed by a bounded sweeper.

A room keeps its messages ``CHATIO_RETENTION_DAYS`` days (0: forever) unless its owner or admins set its
own (``set_room_options {retentionDays}``). Every ``CHATIO_RETENTION_SWEEP_SECONDS`` the sweeper visits the
next ``ROOMS_PER_PASS`` rooms (by id, starting over after the last) and asks the store to remove what is
too old, all but each room's newest message, so seqs go on. Clients learn of the removal when they catch
up: ``join_room`` answers ``reset`` when messages after their ``sinceSeq`` are gone. With several processes
each one sweeps; the work is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from chatio.store import Store, now_ms

log = logging.getLogger(__name__)

ROOMS_PER_PASS: Final = 500
DAY_MS: Final = 86_400_000


class RetentionSweeper:
    """See the module docstring. ``sweep`` is one pass; ``start`` runs passes until ``close``."""

    def __init__(self, store: Store, *, default_days: int, interval_seconds: float) -> None:
        self._store = store
        self._default_days = default_days
        self._interval = interval_seconds
        self._after: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def sweep(self, now: int | None = None) -> int:
        """Visit the next rooms; return how many messages were removed."""
        now = now_ms() if now is None else now
        ids = await self._store.room_ids(after=self._after, limit=ROOMS_PER_PASS)
        self._after = ids[-1] if len(ids) == ROOMS_PER_PASS else None
        removed = 0
        for room_id in ids:
            room = await self._store.get_room(room_id)
            days = self._default_days if room is None or room.retention_days is None else room.retention_days
            if days > 0:
                removed += await self._store.expire(room_id, now - days * DAY_MS)
        return removed

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="retention-sweeper")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                removed = await self.sweep()
            except Exception:  # an outage or a bug: loud, and the next pass tries again
                log.exception("the retention sweep failed")
            else:
                if removed:
                    log.info("retention: removed %d old messages", removed)
