"""Prometheus metrics of one agent, in its own registry (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class AgentMetrics:
    def __init__(self, node: str) -> None:
        self.registry = CollectorRegistry()
        labels = ["node"]
        self.segments = Counter("spotkit_segments_total", "Segments handled, by outcome",
                                [*labels, "outcome"], registry=self.registry)
        self.audio_seconds = Counter("spotkit_audio_seconds_total",
                                     "Audio seconds run through an engine", labels,
                                     registry=self.registry)
        self.batch_seconds = Histogram("spotkit_engine_batch_seconds", "Engine time per batch",
                                       labels, registry=self.registry)
        self.in_flight = Gauge("spotkit_in_flight_segments", "Segments leased by this node",
                               labels, registry=self.registry)
        self.errors = Counter("spotkit_loop_errors_total", "Failed agent iterations", labels,
                              registry=self.registry)
        self.node = node

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)

    def count(self, outcome: str, n: int = 1) -> None:
        self.segments.labels(self.node, outcome).inc(n)
