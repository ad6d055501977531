"""One pinger per server: pings every Engine.IO session, spread over the interval, and enforces the ping
and connect deadlines on time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Final

from chatio.transport.eio import Session

log = logging.getLogger(__name__)

#: How often the pinger wakes at most; each wake pings one bucket of sessions and checks deadlines.
PING_TICK_SECONDS: Final = 0.25


class Pinger:
    """Pings every session of a server, spread over the interval, and enforces the deadlines on time."""

    def __init__(self, interval: float, timeout: float, connect_timeout: float, engine: Any) -> None:
        self.interval = interval
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.tick = min(PING_TICK_SECONDS, interval / 4)
        self._engine = engine
        self._buckets: list[set[Session]] = [set() for _ in range(max(1, round(interval / self.tick)))]
        self._next = 0
        self._pongs: deque[tuple[float, float, Session]] = deque()
        self._connects: deque[tuple[float, Session]] = deque()
        self._task: asyncio.Task[None] | None = None

    def add(self, session: Session) -> None:
        self._buckets[self._next % len(self._buckets)].add(session)
        self._next += 1
        if self.connect_timeout:
            self._connects.append((session.started + self.connect_timeout, session))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, session: Session) -> None:
        for bucket in self._buckets:
            if session in bucket:
                bucket.remove(session)
                return

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        turn = 0
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            for session in list(self._buckets[turn]):
                if session.ping_sent is None and not session.closed:
                    session.ping(now)
                    self._pongs.append((now + self.timeout, now, session))
            turn = (turn + 1) % len(self._buckets)
            await self._expire(now)

    async def _expire(self, now: float) -> None:
        pongs, connects = self._pongs, self._connects
        while pongs and pongs[0][0] <= now:
            _deadline, sent, session = pongs.popleft()
            if session.ping_sent == sent and not session.closed:
                await self._close(session, "ping timeout")
        while connects and connects[0][0] <= now:
            _deadline, session = connects.popleft()
            if not session.closed and not self._engine.joined(session):
                await self._close(session, "connect timeout")

    async def _close(self, session: Session, reason: str) -> None:
        try:
            await session.close(reason)
        except Exception:
            log.exception("closing session %s (%s) failed", session.sid, reason)
