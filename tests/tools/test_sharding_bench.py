"""The sharding bench's placement: each room on one or two of the four processes, spread evenly."""

from __future__ import annotations

from tools.bench.sharding import PROCESSES, home_of, room_share


def test_each_room_lives_on_one_or_two_processes_and_the_shares_are_even() -> None:
    rooms, size = 40, 10
    spans = [{home_of(room, position, size) for position in range(size)} for room in range(rooms)]
    assert all(len(span) in (1, 2) for span in spans)
    assert sum(len(span) == 2 for span in spans) == rooms // 4
    shares = room_share(rooms, size)
    assert len(shares) == PROCESSES and all(0.28 <= share <= 0.34 for share in shares)
