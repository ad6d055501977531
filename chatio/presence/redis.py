"""Presence shared by every process through Redis (``CHATIO_REDIS_URL``), with a heartbeat.

:class:`RedisPresence` answers the :class:`~chatio.presence.Presence` protocol for the whole cluster, with
the same semantics as :class:`~chatio.presence.MemoryPresence`; each first/last decision is one atomic
Lua script (``lua.py``, which also documents the keys).

Liveness. Every process refreshes its deadline every ``CHATIO_PRESENCE_HEARTBEAT_SECONDS`` (N); the
deadline is 3N away. On each beat, every process also reaps the sockets of processes whose deadline passed
and announces what changed (``presence offline``, ``user_left``) through its :class:`Announcer`. A crashed
process's users are therefore offline, and room member lists and counts right, within about 4N.

Outages. Each process keeps its own sockets in memory too. When Redis fails, calls answer from that local
view (the cluster view is unavailable, so members lists show this process's users only), the failure is
logged once, and nothing raises into the chat. The heartbeat keeps trying; once Redis answers again (also
after a restart that lost every key), the process re-registers its sockets, announces the arrivals, and the
cluster view is whole again. The same re-registration repairs a process whose sockets were reaped while it
was alive but stalled, and any drift between Redis and the process's own record.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol

from chatio.presence import OFFLINE, MemberState, MemoryPresence, RoomFull, lua
from chatio.redisconn import REDIS_ERRORS, Outage, RedisClient

log = logging.getLogger(__name__)

REAP_BATCH: Final = 200
_MAX_REAP_BATCHES: Final = 100  # per dead process and beat; the next beat continues
_RESTORE_BATCH: Final = 32


@dataclasses.dataclass(frozen=True, slots=True)
class Departure:
    """A socket removed by the reaper: its rooms, the rooms its user left, whether the user went offline."""

    user: str
    offline: bool
    rooms: tuple[str, ...]
    left: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Arrival:
    """A socket re-registered after an outage: the rooms where its user is (again) present."""

    user: str
    rooms: tuple[str, ...]


class Announcer(Protocol):
    """Tells the cluster's clients about presence changes that no client command caused."""

    async def departed(self, departures: Sequence[Departure]) -> None: ...

    async def arrived(self, arrivals: Sequence[Arrival]) -> None: ...


@dataclasses.dataclass(slots=True)
class _Socket:
    user: str
    connected: bool = True
    rooms: set[str] = dataclasses.field(default_factory=set)


class RedisPresence:
    """Cluster-wide presence; ``start()`` begins the heartbeat, ``close()`` ends it and leaves the cluster."""

    def __init__(self, redis: RedisClient, *, pod: str, prefix: str, heartbeat_seconds: float) -> None:
        self.pod = pod
        # Unique per process lifetime: a restarted process (same pod name) never inherits stale sockets.
        self.pod_id = f"{pod}#{secrets.token_hex(4)}"
        self.announcer: Announcer | None = None
        self._redis = redis
        self._p = "{" + prefix + ":presence}"  # a hash tag: see chatio.presence.lua
        self._keys = [self._p]
        self._heartbeat = heartbeat_seconds
        self._ttl_ms = max(1, round(heartbeat_seconds * 3000))
        self._local = MemoryPresence(pod)
        self._sockets: dict[str, _Socket] = {}
        self._status_changed: set[str] = set()
        self._synced = False
        self._drifted = False
        self._failures = 0
        self._outage = Outage(log, "presence")
        self._task: asyncio.Task[None] | None = None
        self._connect = redis.register_script(lua.CONNECT)
        self._disconnect = redis.register_script(lua.DISCONNECT)
        self._join = redis.register_script(lua.JOIN)
        self._leave = redis.register_script(lua.LEAVE)
        self._set_status = redis.register_script(lua.SET_STATUS)
        self._members = redis.register_script(lua.MEMBERS)
        self._restore = redis.register_script(lua.RESTORE)
        self._reap_socket = redis.register_script(lua.REAP_SOCKET)
        self._beat = redis.register_script(lua.HEARTBEAT)
        self._expired = redis.register_script(lua.EXPIRED)
        self._reap_pod = redis.register_script(lua.REAP_POD)
        self._pods = redis.register_script(lua.PODS)

    # --- lifetime ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Register this process (if Redis answers) and start the heartbeat."""
        await self.beat()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="presence-heartbeat")

    async def close(self) -> None:
        """Stop the heartbeat and take this process's remaining sockets out of the cluster view."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(*REDIS_ERRORS):
            await self._reap_all(self.pod_id, force=True)

    @property
    def healthy(self) -> bool:
        """False while Redis fails or this process's sockets are not (yet) registered again."""
        return self._synced and not self._outage.down

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                await self.beat()
            except Exception:  # a bug: loud, and the heartbeat goes on
                log.exception("presence heartbeat failed")

    async def beat(self) -> None:
        """One heartbeat: refresh this process's deadline, repair its registration, reap dead ones."""
        try:
            intact, held = await self._beat(
                keys=self._keys, args=[self._p, self.pod_id, self.pod, self._ttl_ms]
            )
            # Sockets held in Redis and here differ for a moment while commands are in flight; a difference
            # seen on two beats in a row is drift, and re-registering repairs it.
            drifted = int(held) != len(self._sockets)
            if not int(intact) or (drifted and self._drifted):
                self._synced = False
            self._drifted = drifted
            if not self._synced:
                await self._resync()
            await self._reap_expired()
        except REDIS_ERRORS as exc:
            self._failed(exc)

    # --- the protocol: writes ------------------------------------------------------------------------

    async def connect(self, user: str, sid: str) -> bool:
        local = await self._local.connect(user, sid)
        self._sockets.setdefault(sid, _Socket(user)).connected = True
        answer = await self._cluster(
            lambda: self._connect(keys=self._keys, args=[self._p, self.pod_id, sid, user])
        )
        return local if answer is None else bool(answer)

    async def disconnect(self, user: str, sid: str) -> bool:
        local = await self._local.disconnect(user, sid)
        socket = self._sockets.get(sid)
        if socket is not None:
            socket.connected = False
            if not socket.rooms:
                del self._sockets[sid]
        answer = await self._cluster(lambda: self._disconnect(keys=self._keys, args=[self._p, sid, user]))
        return local if answer is None else bool(answer)

    async def join(self, room: str, user: str, sid: str, limit: int = 0) -> bool:
        answer = await self._cluster(
            lambda: self._join(keys=self._keys, args=[self._p, self.pod_id, room, user, sid, limit])
        )
        if answer is not None and int(answer) < 0:
            raise RoomFull(room, limit)
        # While Redis fails, the limit holds for this process's view only.
        local = await self._local.join(room, user, sid, limit if answer is None else 0)
        self._sockets.setdefault(sid, _Socket(user, connected=False)).rooms.add(room)
        return local if answer is None else bool(answer)

    async def leave(self, room: str, user: str, sid: str) -> bool:
        local = await self._local.leave(room, user, sid)
        socket = self._sockets.get(sid)
        if socket is not None:
            socket.rooms.discard(room)
            if not socket.connected and not socket.rooms:
                del self._sockets[sid]
        answer = await self._cluster(lambda: self._leave(keys=self._keys, args=[self._p, room, user, sid]))
        return local if answer is None else bool(answer)

    async def set_status(self, user: str, status: str) -> None:
        await self._local.set_status(user, status)
        if (
            await self._cluster(lambda: self._set_status(keys=self._keys, args=[self._p, user, status]))
            is None
        ):
            self._status_changed.add(user)

    # --- the protocol: reads -------------------------------------------------------------------------

    async def count(self, room: str) -> int:
        answer = await self._cluster(lambda: self._redis.hlen(f"{self._p}:room:{room}"))
        return await self._local.count(room) if answer is None else int(answer)

    async def members(self, room: str) -> list[MemberState]:
        flat = await self._cluster(lambda: self._members(keys=self._keys, args=[self._p, room]))
        if flat is None:
            return await self._local.members(room)
        pairs = sorted(zip(flat[::2], flat[1::2], strict=True))
        return [MemberState(str(user), str(status)) for user, status in pairs]

    async def status(self, user: str) -> str:
        stored = await self._cluster(lambda: self._redis.hget(f"{self._p}:status", user))
        if stored is None:  # offline, or Redis failed: then this process's view
            return await self._local.status(user) if self._outage.down else OFFLINE
        return str(stored)

    async def rooms_of(self, user: str) -> list[str]:
        rooms = await self._cluster(lambda: self._redis.smembers(f"{self._p}:urooms:{user}"))
        if rooms is None:
            return await self._local.rooms_of(user)
        return sorted(str(room) for room in rooms)

    async def online_users(self) -> int:
        answer = await self._cluster(lambda: self._redis.scard(f"{self._p}:online"))
        return await self._local.online_users() if answer is None else int(answer)

    async def active_rooms(self) -> int:
        answer = await self._cluster(lambda: self._redis.scard(f"{self._p}:rooms"))
        return await self._local.active_rooms() if answer is None else int(answer)

    async def pods(self) -> dict[str, int]:
        flat = await self._cluster(lambda: self._pods(keys=self._keys, args=[self._p]))
        if flat is None:
            return await self._local.pods()
        counts: dict[str, int] = {}
        for name, sockets in zip(flat[::2], flat[1::2], strict=True):
            counts[str(name)] = counts.get(str(name), 0) + int(sockets)
        return counts

    async def _cluster(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """The answer of a Redis call, or None while Redis fails: callers then answer from the local view,
        and the heartbeat re-registers this process's sockets once Redis is back."""
        if self._outage.down:
            self._synced = False
            return None
        try:
            return await call()
        except REDIS_ERRORS as exc:
            self._failed(exc)
            return None

    def _failed(self, error: BaseException) -> None:
        self._outage.failed(error)
        self._synced = False
        self._failures += 1

    # --- repair and reaping --------------------------------------------------------------------------

    async def _resync(self) -> None:
        """Make Redis hold exactly this process's sockets as it knows them, and announce the difference."""
        registered = {str(sid) for sid in await self._redis.smembers(f"{self._p}:pod:{self.pod_id}")}
        # Redis answers: let commands reach it again at once. Whatever they do meanwhile is idempotent with
        # the re-registration below; a failure meanwhile leaves this process unsynced for the next beat.
        self._outage.recovered()
        failures = self._failures
        departures = []
        for sid in registered - set(self._sockets):
            answer = await self._reap_socket(keys=self._keys, args=[self._p, sid])
            if answer:
                departures.append(_departure(answer))
        arrivals = []
        sockets = list(self._sockets.items())
        # Concurrent calls in batches rather than a pipeline: Redis Cluster's client refuses scripts in one.
        for start in range(0, len(sockets), _RESTORE_BATCH):
            batch = sockets[start : start + _RESTORE_BATCH]
            answers = await asyncio.gather(*(self._restore_socket(sid, socket) for sid, socket in batch))
            for (_sid, socket), (_online, firsts) in zip(batch, answers, strict=True):
                if firsts:
                    arrivals.append(Arrival(socket.user, tuple(str(room) for room in firsts)))
        for user in list(self._status_changed):
            await self._set_status(keys=self._keys, args=[self._p, user, await self._local.status(user)])
            self._status_changed.discard(user)
        self._synced = self._failures == failures
        self._drifted = False
        if departures or arrivals:
            log.info("presence re-registered: %d sockets gone, %d back", len(departures), len(arrivals))
        await self._announce(departures, arrivals)

    async def _restore_socket(self, sid: str, socket: _Socket) -> Any:
        status = await self._local.status(socket.user)
        args: list[str | int] = [self._p, self.pod_id, sid, socket.user, int(socket.connected), status]
        args += sorted(socket.rooms)
        return await self._restore(keys=self._keys, args=args)

    async def _reap_expired(self) -> None:
        for pod in await self._expired(keys=self._keys, args=[self._p]):
            if str(pod) != self.pod_id:
                await self._reap_all(str(pod), force=False)

    async def _reap_all(self, pod: str, *, force: bool) -> None:
        for _ in range(_MAX_REAP_BATCHES):
            state, answers = await self._reap_pod(
                keys=self._keys, args=[self._p, pod, REAP_BATCH, int(force)]
            )
            departures = [_departure(answer) for answer in answers]
            if departures:
                log.info("presence: reaped %d sockets of %s", len(departures), pod)
                await self._announce(departures, [])
            if int(state) != 2:
                return

    async def _announce(self, departures: Sequence[Departure], arrivals: Sequence[Arrival]) -> None:
        if self.announcer is None:
            return
        try:
            if departures:
                await self.announcer.departed(departures)
            if arrivals:
                await self.announcer.arrived(arrivals)
        except Exception:
            log.exception("announcing presence changes failed")


def _departure(answer: Sequence[Any]) -> Departure:
    user, offline, rooms, left = answer
    return Departure(
        str(user), bool(int(offline)), tuple(sorted(map(str, rooms))), tuple(sorted(map(str, left)))
    )
