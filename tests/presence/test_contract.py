"""One contract for every Presence: MemoryPresence and RedisPresence (a real redis-server, and a real Redis
Cluster), then what only the Redis driver promises: one view across processes, dead processes reaped,
outages survived, the room member limit held across processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from chatio.presence import MemberState, MemoryPresence, Presence, RoomFull
from chatio.presence.redis import Arrival, Departure, RedisPresence
from chatio.redisconn import RedisClient, connect
from tests.services import REDIS_KINDS
from tools.devservices import RedisProcess

HEARTBEAT = 0.2


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


class Recorder:
    """An Announcer that keeps what it was told."""

    def __init__(self) -> None:
        self.departures: list[Departure] = []
        self.arrivals: list[Arrival] = []

    async def departed(self, departures: Sequence[Departure]) -> None:
        self.departures.extend(departures)

    async def arrived(self, arrivals: Sequence[Arrival]) -> None:
        self.arrivals.extend(arrivals)


class RedisPods:
    """RedisPresence instances ("processes") sharing one key prefix; all closed at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"test-{uuid.uuid4().hex[:12]}"
        self.clients: list[RedisClient] = []
        self.started: list[RedisPresence] = []

    async def start(self, pod: str, *, heartbeat: float = HEARTBEAT) -> RedisPresence:
        client = connect(self.url, timeout=0.5, decode=True)
        self.clients.append(client)
        presence = RedisPresence(client, pod=pod, prefix=self.prefix, heartbeat_seconds=heartbeat)
        presence.announcer = Recorder()
        await presence.start()
        self.started.append(presence)
        return presence

    async def close(self) -> None:
        for presence in self.started:
            await presence.close()
        if self.clients:
            keys = await presence_keys(self.clients[0], self.prefix)
            if keys:
                await self.clients[0].delete(*keys)
        for client in self.clients:
            await client.aclose()


async def presence_keys(client: RedisClient, prefix: str) -> list[str]:
    """Every presence key of ``prefix`` (they share one hash slot, so one DEL takes them all)."""
    return [key async for key in client.scan_iter(f"{{{prefix}:presence}}:*", count=1000)]


def recorder(presence: RedisPresence) -> Recorder:
    assert isinstance(presence.announcer, Recorder)
    return presence.announcer


@pytest.fixture
async def redis_pods(any_redis_url: str) -> AsyncIterator[RedisPods]:
    pods = RedisPods(any_redis_url)
    try:
        yield pods
    finally:
        await pods.close()


@pytest.fixture(params=["memory", *REDIS_KINDS])
async def presence(request: pytest.FixtureRequest) -> AsyncIterator[Presence]:
    if request.param == "memory":
        yield MemoryPresence("pod-a")
        return
    pods = RedisPods(
        request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
    )
    try:
        yield await pods.start("pod-a")
    finally:
        await pods.close()


# --- the contract ----------------------------------------------------------------------------------------


async def test_a_user_comes_online_with_the_first_socket_and_leaves_with_the_last(presence: Presence) -> None:
    assert await presence.status("alice") == "offline"
    assert await presence.connect("alice", "s1") is True
    assert await presence.connect("alice", "s2") is False
    assert await presence.status("alice") == "online"
    assert await presence.online_users() == 1
    assert await presence.disconnect("alice", "s1") is False
    assert await presence.status("alice") == "online"
    assert await presence.disconnect("alice", "s2") is True
    assert await presence.status("alice") == "offline"
    assert await presence.online_users() == 0


async def test_first_and_last_socket_in_a_room(presence: Presence) -> None:
    await presence.connect("alice", "s1")
    await presence.connect("alice", "s2")
    assert await presence.join("lobby", "alice", "s1") is True
    assert await presence.join("lobby", "alice", "s2") is False
    assert await presence.count("lobby") == 1
    assert await presence.leave("lobby", "alice", "s1") is False
    assert await presence.rooms_of("alice") == ["lobby"]
    assert await presence.leave("lobby", "alice", "s2") is True
    assert await presence.count("lobby") == 0
    assert await presence.rooms_of("alice") == []
    assert await presence.active_rooms() == 0


async def test_members_are_sorted_with_their_status(presence: Presence) -> None:
    for user, sid in [("carol", "s3"), ("alice", "s1"), ("bob", "s2")]:
        await presence.connect(user, sid)
        await presence.join("lobby", user, sid)
    await presence.set_status("bob", "busy")
    assert await presence.members("lobby") == [
        MemberState("alice", "online"),
        MemberState("bob", "busy"),
        MemberState("carol", "online"),
    ]
    assert await presence.status("bob") == "busy"
    assert await presence.count("lobby") == 3
    assert await presence.members("elsewhere") == []


async def test_status_needs_a_connected_user_and_resets_when_they_come_back(presence: Presence) -> None:
    await presence.set_status("ghost", "away")
    assert await presence.status("ghost") == "offline"
    await presence.connect("alice", "s1")
    await presence.set_status("alice", "away")
    await presence.disconnect("alice", "s1")
    assert await presence.status("alice") == "offline"
    await presence.connect("alice", "s2")
    assert await presence.status("alice") == "online"


async def test_rooms_and_counts(presence: Presence) -> None:
    await presence.connect("alice", "s1")
    await presence.connect("bob", "s2")
    for room in ["b", "a"]:
        await presence.join(room, "alice", "s1")
    await presence.join("a", "bob", "s2")
    assert await presence.rooms_of("alice") == ["a", "b"]
    assert await presence.rooms_of("bob") == ["a"]
    assert (await presence.count("a"), await presence.count("b")) == (2, 1)
    assert await presence.active_rooms() == 2
    assert await presence.online_users() == 2


async def test_what_is_unknown_or_repeated_changes_nothing(presence: Presence) -> None:
    assert await presence.disconnect("nobody", "s9") is False
    assert await presence.leave("lobby", "nobody", "s9") is False
    await presence.connect("alice", "s1")
    assert await presence.connect("alice", "s1") is False
    assert await presence.join("lobby", "alice", "s1") is True
    assert await presence.join("lobby", "alice", "s1") is False
    assert await presence.leave("other", "alice", "s1") is False
    assert await presence.count("lobby") == 1
    assert await presence.leave("lobby", "alice", "s1") is True
    assert await presence.leave("lobby", "alice", "s1") is False


async def test_leaving_rooms_after_disconnecting_still_reports_the_last_socket(presence: Presence) -> None:
    # The chat core disconnects a socket first, then takes it out of each room.
    await presence.connect("alice", "s1")
    await presence.join("lobby", "alice", "s1")
    assert await presence.disconnect("alice", "s1") is True
    assert await presence.leave("lobby", "alice", "s1") is True
    assert await presence.members("lobby") == []


async def test_a_full_room_refuses_new_users_but_not_its_members(presence: Presence) -> None:
    for index in range(3):
        assert await presence.join("lobby", f"user{index}", f"s{index}", limit=3) is True
    with pytest.raises(RoomFull):
        await presence.join("lobby", "late", "s9", limit=3)
    assert await presence.join("lobby", "user0", "s0-other", limit=3) is False  # a second socket: welcome
    assert await presence.count("lobby") == 3 and await presence.rooms_of("late") == []
    await presence.leave("lobby", "user1", "s1")
    assert await presence.join("lobby", "late", "s9", limit=3) is True


async def test_pods_counts_the_sockets_of_this_process(presence: Presence) -> None:
    await presence.connect("alice", "s1")
    await presence.connect("bob", "s2")
    assert (await presence.pods())["pod-a"] == 2


# --- Redis only ------------------------------------------------------------------------------------------


@pytest.mark.redis
async def test_processes_share_one_view(redis_pods: RedisPods) -> None:
    a, b = await redis_pods.start("pod-a"), await redis_pods.start("pod-b")
    assert await a.connect("alice", "a1") is True
    assert await b.connect("alice", "b1") is False
    assert await a.join("lobby", "alice", "a1") is True
    assert await b.join("lobby", "alice", "b1") is False
    await b.connect("bob", "b2")
    await b.join("lobby", "bob", "b2")
    await a.set_status("alice", "away")
    assert await b.members("lobby") == [MemberState("alice", "away"), MemberState("bob", "online")]
    assert await a.pods() == {"pod-a": 1, "pod-b": 2}
    assert await a.disconnect("alice", "a1") is False
    assert await a.leave("lobby", "alice", "a1") is False
    assert await b.status("alice") == "away"


@pytest.mark.redis
async def test_the_member_limit_holds_for_processes_joining_at_once(redis_pods: RedisPods) -> None:
    pods = [await redis_pods.start("pod-a"), await redis_pods.start("pod-b")]
    for trial in range(4):
        room = f"race{trial}"

        async def join(index: int, room: str = room) -> bool:
            presence = pods[index % 2]
            try:
                await presence.join(room, f"user{index}", f"{room}-{index}", limit=5)
            except RoomFull:
                return False
            return True

        admitted = await asyncio.gather(*(join(index) for index in range(12)))
        assert admitted.count(True) == 5
        assert await pods[0].count(room) == 5


@pytest.mark.redis
async def test_a_dead_process_is_reaped_and_its_departures_announced(redis_pods: RedisPods) -> None:
    a, b = await redis_pods.start("pod-a"), await redis_pods.start("pod-b")
    await a.connect("alice", "a1")
    await a.join("lobby", "alice", "a1")
    await a.join("den", "alice", "a1")
    await b.connect("bob", "b1")
    await b.join("lobby", "bob", "b1")
    await b.connect("carol", "b2")
    await a.connect("carol", "a2")
    await a.join("lobby", "carol", "a2")
    await b.join("lobby", "carol", "b2")
    crashed = asyncio.get_running_loop().time()
    assert a._task is not None
    a._task.cancel()  # the process dies: no more heartbeats, nothing cleaned up

    async def reaped() -> bool:
        return [m.user for m in await b.members("lobby")] == ["bob", "carol"]

    await eventually(reaped)
    assert asyncio.get_running_loop().time() - crashed < 4 * HEARTBEAT + 1.0
    assert await b.status("alice") == "offline" and await b.online_users() == 2
    assert await b.rooms_of("alice") == [] and await b.count("den") == 0
    assert await b.pods() == {"pod-b": 2}
    by_user = {gone.user: gone for gone in recorder(b).departures}
    assert by_user["alice"] == Departure("alice", True, ("den", "lobby"), ("den", "lobby"))
    # carol still has a socket in the lobby on pod-b: neither offline nor gone from the room.
    assert by_user["carol"] == Departure("carol", False, ("lobby",), ())


@pytest.mark.redis
async def test_keys_lost_in_redis_are_registered_again(redis_pods: RedisPods) -> None:
    a = await redis_pods.start("pod-a")
    await a.connect("alice", "a1")
    await a.join("lobby", "alice", "a1")
    await a.set_status("alice", "busy")
    client = redis_pods.clients[0]
    await client.delete(*await presence_keys(client, redis_pods.prefix))  # a restart without persistence
    assert await a.count("lobby") == 0

    async def restored() -> bool:
        return await a.members("lobby") == [MemberState("alice", "busy")]

    await eventually(restored)
    assert recorder(a).arrivals == [Arrival("alice", ("lobby",))]
    assert a.healthy


@pytest.mark.redis
async def test_an_outage_answers_from_this_process_and_heals(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    pods = RedisPods(server.url)
    try:
        a = await pods.start("pod-a")
        await a.connect("alice", "a1")
        await a.join("lobby", "alice", "a1")
        server.kill()
        # Nothing raises into the chat: writes and reads answer from this process's own sockets.
        assert await a.connect("bob", "a2") is True
        assert await a.join("lobby", "bob", "a2") is True
        assert [m.user for m in await a.members("lobby")] == ["alice", "bob"]
        assert await a.count("lobby") == 2 and await a.status("bob") == "online"
        await a.beat()
        assert not a.healthy
        server.start()  # empty: persistence is off
        await a.beat()
        assert a.healthy
        assert [m.user for m in await a.members("lobby")] == ["alice", "bob"]
        assert await a.online_users() == 2
    finally:
        await pods.close()
        server.stop()
