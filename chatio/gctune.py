"""Garbage collection for a long-running server: fewer, cheaper collections, and every pause measured.

CPython's cycle collector scans every tracked object of a generation when it runs. A chat server holds
many long-lived objects (the modules it imported, and per connection the aiohttp, Engine.IO and Socket.IO
objects), so the default thresholds run frequent young collections and, as connections accumulate, full
collections that scan all of them and stall the event loop. Here:

* everything alive once the server is built is frozen (``gc.freeze``): never scanned again;
* the young-generation threshold is raised, so a burst of short-lived message objects costs one
  collection per ``YOUNG_THRESHOLD`` allocations instead of one per 700;
* each collection's duration is observed by generation (``chat_gc_pause_seconds``), so a stall shows up
  in the metrics rather than as unexplained latency.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Final

from prometheus_client import CollectorRegistry, Histogram

YOUNG_THRESHOLD: Final = 50_000
MIDDLE_THRESHOLD: Final = 20
OLD_THRESHOLD: Final = 100
_BUCKETS: Final = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class GcMonitor:
    """Observes every collection's duration into a histogram labelled by generation."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.pauses = Histogram(
            "chat_gc_pause_seconds",
            "Duration of each garbage collection, by generation.",
            ["generation"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.labels(str(info["generation"])).observe(time.perf_counter() - self._started)

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)


def tune_for_serving() -> None:
    """Collect once, freeze the survivors, and raise the thresholds. Call once the app is built."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
