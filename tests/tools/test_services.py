"""The test services themselves: restartable mongod with its data, redis-server answering, PIDs reaped."""

from __future__ import annotations

import os

import pytest
import redis

from tests.services import MongodFactory


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.mongo
def test_mongod_restarts_on_its_port_with_its_data(mongod_factory: MongodFactory) -> None:
    mongod = mongod_factory()
    with mongod.client() as client:
        client.chat.things.insert_one({"_id": "kept"})
    first_pid, port = mongod.pid, mongod.port
    assert first_pid is not None
    mongod.stop()
    assert not mongod.running and gone(first_pid)
    mongod.start()
    assert mongod.port == port and mongod.pid != first_pid
    with mongod.client() as client:
        assert client.chat.things.find_one({"_id": "kept"}) == {"_id": "kept"}
        assert client.admin.command("hello")["setName"] == "rs0"
    second_pid = mongod.pid
    assert second_pid is not None
    mongod.kill()
    assert not mongod.running and gone(second_pid)


@pytest.mark.redis
def test_redis_url_answers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        assert client.ping() is True
    finally:
        client.close()
