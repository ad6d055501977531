"""Prometheus metrics, in a registry of the application's own so that several apps can share a process."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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

    def watch(self, connections: Callable[[], float], rooms: Callable[[], float]) -> None:
        """Read the gauges from live state at scrape time instead of tracking them twice."""
        self.connections_active.set_function(connections)
        self.rooms_active.set_function(rooms)

    def render(self) -> bytes:
        return generate_latest(self.registry)
