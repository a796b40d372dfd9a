"""The gateway's operations side: Prometheus metrics, per-key rate limits and structured access logs.

Access logs are one JSON object a request with the method, route, status, latency, the key's *id*
(public: it names the key, it is not the secret), the path that served it and the bytes received —
never the Authorization header, a key's secret, a webhook URL or any media or transcript text.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

access_log = logging.getLogger("spotkit.gateway.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class GatewayMetrics:
    """One registry per app (tests run several gateways in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("spotkit_gateway_requests", "Requests answered, by route, status and path",
                                ["route", "status", "path"], registry=self.registry)
        self.latency = Histogram("spotkit_gateway_request_seconds", "Time to answer, by route", ["route"],
                                 buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
                                 registry=self.registry)
        self.bytes_in = Counter("spotkit_gateway_upload_bytes", "Media bytes received", registry=self.registry)
        self.audio = Counter("spotkit_gateway_audio_seconds", "Speech seconds answered, by path", ["path"],
                             registry=self.registry)


class RateLimiter:
    """A token bucket per key: *rate_per_minute* requests, bursting up to that many. Per instance —
    behind a load balancer of N instances a key gets up to N times its rate (docs/gateway.md)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key_id: str, rate_per_minute: int) -> float:
        """0 when the request may go ahead; else the seconds until it may (for ``retry-after``)."""
        now, per_second = self.clock(), rate_per_minute / 60.0
        with self._lock:
            tokens, at = self._buckets.get(key_id, (float(rate_per_minute), now))
            tokens = min(float(rate_per_minute), tokens + (now - at) * per_second)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / per_second


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


class AccessLog:
    """ASGI middleware: times every HTTP request and writes its access-log line and metrics. Handlers
    add what they know (key id, path, job) to ``scope["state"]`` (Starlette's ``request.state``)."""

    def __init__(self, app: App, metrics: GatewayMetrics, clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.metrics, self.clock = app, metrics, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = self.clock(), 500
        scope.setdefault("state", {})

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = self.clock() - started
            state: dict[str, Any] = scope["state"]
            route = str(state.get("route") or _route_of(scope))
            path = str(state.get("path", ""))
            self.metrics.requests.labels(route, str(status), path).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            if route not in ("healthz", "readyz", "metrics"):
                access_log.info(json.dumps({
                    "event": "access", "method": scope.get("method"), "route": route, "status": status,
                    "ms": round(elapsed * 1000, 1), "key_id": state.get("key_id", ""), "path": path,
                    "cache": state.get("cache", ""), "job": state.get("job", ""),
                    "bytes_in": state.get("bytes_in", 0)}, sort_keys=True))


def _route_of(scope: Scope) -> str:
    """A bounded label for the route (never the raw URL, which would grow the metric's cardinality)."""
    url = str(scope.get("path", ""))
    for prefix, name in (("/v1/audio/transcriptions", "transcriptions"), ("/v1/spotkit/jobs", "jobs"),
                         ("/v1/models", "models"), ("/healthz", "healthz"), ("/readyz", "readyz"),
                         ("/metrics", "metrics")):
        if url.startswith(prefix):
            return name
    return "other"
