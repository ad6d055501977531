"""Prometheus metrics, in a registry of the application's own so that several apps can share a process."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric as PrometheusMetric

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Every metric chatio exports. Event labels come from a closed set, never from client input."""

    def __init__(self, pod: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.pod = pod
        # The pod label as an info metric (join on instance), not on every series: where Kubernetes service
        # discovery already adds a `pod` target label, a second one would be renamed `exported_pod`.
        info = Gauge("chat_pod_info", "This process, by pod name.", ["pod"], registry=self.registry)
        info.labels(pod).set(1)
        self.connections_active = Gauge(
            "chat_connections_active", "Socket.IO connections open on this process.", registry=self.registry
        )
        self.rooms_active = Gauge(
            "chat_rooms_active", "Rooms with at least one socket on this process.", registry=self.registry
        )
        self.messages_published = Counter(
            "chat_messages_published", "Messages accepted, stored and published.", registry=self.registry
        )
        self.messages_broadcast = Counter(
            "chat_messages_broadcast",
            "Message deliveries to sockets on this process.",
            registry=self.registry,
        )
        self.fanout_received = Counter(
            "chat_fanout_received",
            "Payloads this process received from Redis pub/sub (its own echoes included).",
            registry=self.registry,
        )
        self.event_duration = Histogram(
            "chat_event_duration_seconds",
            "Time to handle a client command, by event.",
            ["event"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "chat_events",
            "Client commands handled, by event and outcome.",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.connects = Counter(
            "chat_connects", "Connection attempts, by outcome.", ["outcome"], registry=self.registry
        )
        self.engine_sessions = Gauge(
            "chat_engineio_sessions",
            "Engine.IO sessions open on this process, Socket.IO connected or not (yet).",
            registry=self.registry,
        )
        self.bad_packets = Counter(
            "chat_bad_packets",
            "Malformed Engine.IO or Socket.IO packets from clients (each closed its connection).",
            registry=self.registry,
        )

        # labels() takes a lock and builds a key on every call; the children of the closed label sets are
        # kept here instead (commands are the hot path).
        self._event_children: dict[tuple[str, str], tuple[Histogram, Counter]] = {}

    def event_handled(self, event: str, outcome: str, seconds: float) -> None:
        """Record one client command: its duration and its outcome."""
        children = self._event_children.get((event, outcome))
        if children is None:
            children = (self.event_duration.labels(event), self.events.labels(event, outcome))
            self._event_children[(event, outcome)] = children
        children[0].observe(seconds)
        children[1].inc()

    def watch(
        self,
        connections: Callable[[], float],
        rooms: Callable[[], float],
        sessions: Callable[[], float] = lambda: 0,
    ) -> None:
        """Read the gauges from live state at scrape time instead of tracking them twice."""
        self.connections_active.set_function(connections)
        self.rooms_active.set_function(rooms)
        self.engine_sessions.set_function(sessions)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def names(self) -> list[str]:
        """Every metric's dotted name (``chat.connections.active``), as Spring's ``/actuator/metrics``."""
        return sorted(_dotted(family.name) for family in self.registry.collect())

    def measure(self, name: str, tags: Mapping[str, str]) -> Measured | None:
        """One metric by dotted or Prometheus name, its samples filtered by ``tags`` (label: value), summed
        as Spring's ``/actuator/metrics/{name}`` does; None when no such metric, or no sample matches."""
        wanted = name.replace(".", "_")
        for family in self.registry.collect():
            if family.name == wanted:
                return _measured(family, tags)
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class Measured:
    name: str
    description: str
    base_unit: str | None
    #: (statistic, value): COUNT and TOTAL (TOTAL_TIME for seconds) for counters and histograms, else VALUE.
    measurements: list[tuple[str, float]]
    #: Label name -> the values seen, over all of the metric's samples.
    available_tags: dict[str, list[str]]


_NOT_TAGS: Final = frozenset({"le", "quantile"})


def _dotted(name: str) -> str:
    return name.replace("_", ".")


def _measured(family: PrometheusMetric, tags: Mapping[str, str]) -> Measured | None:
    samples = [s for s in family.samples if not s.name.endswith("_created")]
    available: dict[str, set[str]] = {}
    for sample in samples:
        for label, value in sample.labels.items():
            if label not in _NOT_TAGS:
                available.setdefault(label, set()).add(value)
    chosen = [s for s in samples if all(s.labels.get(k) == v for k, v in tags.items())]
    if tags and not chosen:
        return None
    unit = "seconds" if family.name.endswith("_seconds") else None

    def total(suffix: str) -> float:
        return sum(s.value for s in chosen if s.name == family.name + suffix)

    if family.type == "counter":
        measurements = [("COUNT", total("_total"))]
    elif family.type in ("histogram", "summary"):
        measurements = [("COUNT", total("_count")), ("TOTAL_TIME" if unit else "TOTAL", total("_sum"))]
    else:
        measurements = [("VALUE", sum(s.value for s in chosen))]
    return Measured(
        _dotted(family.name),
        family.documentation,
        unit,
        measurements,
        {label: sorted(values) for label, values in sorted(available.items())},
    )
