"""Fixtures of the end-to-end suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.procs import ServerProcess


@pytest.fixture
def pods_to_stop() -> Iterator[list[ServerProcess]]:
    """The chatio processes a test starts (``cluster_harness.launch``); each stopped afterwards."""
    started: list[ServerProcess] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()
