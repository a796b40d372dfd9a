"""Where interruption events come from. Each source reports its *current* events when polled; the
watcher merges them into one `EventStore`, which de-duplicates by event id.

* `ScheduledEventsSource` — Azure Scheduled Events for this VM (the spot eviction notice).
* `SignalSource` — SIGTERM from the service manager (systemd stop, VM shutdown).
* `DrainRequestSource` — an operator's ``spotkit node drain NODE`` (a key in the store).
"""

from __future__ import annotations

import logging
import socket
import threading
from abc import ABC, abstractmethod
from dataclasses import replace

from runtime.errors import SpotkitError
from runtime.eviction.events import InterruptionEvent
from runtime.eviction.imds import ImdsClient, ImdsError
from runtime.records import DrainRequest, drain_request_key, load
from runtime.store.base import ObjectStore

log = logging.getLogger("spotkit.watcher")


class EventSource(ABC):
    name: str
    interval: float  # seconds between polls

    @abstractmethod
    def poll(self, now: float) -> list[InterruptionEvent] | None:
        """This node's current events, or None when the source could not be read (keep the last)."""


class ScheduledEventsSource(EventSource):
    """Polls IMDS; keeps only events whose ``Resources`` name this VM."""

    name = "imds"

    def __init__(self, client: ImdsClient, vm_name: str = "", interval: float = 1.0,
                 first_timeout: float = 120.0) -> None:
        self.client = client
        self.vm_name = vm_name
        self.interval = interval
        # The first call enables the service on Azure and can take up to two minutes.
        self._first_timeout = first_timeout
        self._answered = False
        self.polls = 0
        self.failures = 0
        self.skipped = 0
        self.last_error = ""

    def poll(self, now: float) -> list[InterruptionEvent] | None:
        self.polls += 1
        steady_timeout = self.client.timeout
        try:
            if not self._answered:
                self.client.timeout = self._first_timeout
            if not self.vm_name:
                self.vm_name = self._own_name()
            document = self.client.scheduled_events()
            self._answered = True
        except SpotkitError as err:
            self.failures += 1
            if str(err) != self.last_error or self.failures % 60 == 1:
                log.warning("event=imds-poll-failed failures=%d error=%r (still polling)",
                            self.failures, str(err))
            self.last_error = str(err)
            return None
        finally:
            self.client.timeout = steady_timeout
        if document.skipped:
            self.skipped += len(document.skipped)
            log.warning("event=imds-events-skipped count=%d reasons=%r", len(document.skipped), document.skipped)
        return [replace(e, others=tuple(r for r in e.resources if r != self.vm_name))
                for e in document.events if e.applies_to(self.vm_name)]

    def _own_name(self) -> str:
        """This VM's name from instance metadata; where there is none (Microsoft's mock server has no
        instance endpoint), the host name — what Azure sets it to for a single VM — with a warning."""
        try:
            name = self.client.vm_name()
        except ImdsError as err:
            if err.status != 404:
                raise
            name = socket.gethostname()
            log.warning("event=vm-name-fallback name=%s reason=%r (set SPOTKIT_VM_NAME to be sure)", name, str(err))
        log.info("event=vm-name name=%s", name)
        return name


class SignalSource(EventSource):
    """SIGTERM becomes an event whose deadline leaves the service manager's stop timeout."""

    name = "signal"
    interval = 0.0  # it is pushed: `trigger` is called from the signal handler

    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self._event: InterruptionEvent | None = None
        self._received = 0
        self._lock = threading.Lock()

    def trigger(self, now: float, signal_name: str = "SIGTERM") -> int:
        """Record a signal; returns how many have arrived (the first drains, a second stops at once)."""
        with self._lock:
            self._received += 1
            if self._event is None:
                self._event = InterruptionEvent(
                    f"signal-{signal_name.lower()}-{int(now * 1000)}", "Sigterm", "Scheduled",
                    now + self.grace_seconds, description=f"{signal_name} received",
                    source="spotkit", origin="signal")
            return self._received

    def poll(self, now: float) -> list[InterruptionEvent] | None:
        with self._lock:
            return [self._event] if self._event else []


class DrainRequestSource(EventSource):
    """An operator's drain request, written to the store by ``spotkit node drain``."""

    name = "drain-request"

    def __init__(self, store: ObjectStore, node: str, interval: float = 5.0) -> None:
        self.store = store
        self.node = node
        self.interval = interval

    def poll(self, now: float) -> list[InterruptionEvent] | None:
        try:
            if not self.store.exists(drain_request_key(self.node)):
                return []
            request = load(DrainRequest, self.store.get(drain_request_key(self.node)),
                           drain_request_key(self.node))
            return [InterruptionEvent(
                request.id, "Drain", "Scheduled", request.requested_at + request.deadline_seconds,
                resources=(self.node,), description=request.reason, source="User", origin="drain-request")]
        except SpotkitError as err:  # BadRecord included: a mangled request is logged, never a drain
            log.warning("event=drain-request-unreadable node=%s error=%r", self.node, str(err))
            return None
