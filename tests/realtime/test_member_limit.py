"""The room member limit (``CHATIO_ROOM_MAX_MEMBERS``) holds across processes sharing Redis: issue 14, item 9.

Before the fix, a join counted the members and then joined, in two steps: twelve users joining at once over
two processes were all admitted to a room of five.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from chatio.config import Secret, Settings
from tests.harness import Client, connect, serving

LIMIT = 5
USERS = 12


@pytest.mark.redis
async def test_users_joining_at_once_over_two_processes_never_exceed_the_limit(any_redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"

    def settings(pod: str) -> Settings:
        return Settings(
            pod_name=pod, redis_url=Secret(any_redis_url), redis_prefix=prefix, room_max_members=LIMIT
        )

    async with serving(settings("one")) as one, serving(settings("two")) as two:
        users: list[Client] = [
            await connect((one, two)[index % 2].url, f"user{index}") for index in range(USERS)
        ]
        try:
            for trial in range(3):
                room = f"full{trial}"
                acks = await asyncio.gather(*(user.call("join_room", {"room": room}) for user in users))
                admitted = [ack for ack in acks if ack["ok"]]
                refused = [ack["error"]["code"] for ack in acks if not ack["ok"]]
                assert len(admitted) == LIMIT, acks
                assert refused == ["room_full"] * (USERS - LIMIT)
                # Each admitted user sees at most the limit in the member list.
                assert all(len(ack["members"]) <= LIMIT for ack in admitted)
        finally:
            for user in users:
                await user.sio.disconnect()
