"""Interruption events, the Scheduled Events document format, and the store that de-duplicates them.

Azure's document (``GET /metadata/scheduledevents?api-version=2020-07-01``)::

    {"DocumentIncarnation": 2,
     "Events": [{"EventId": "…", "EventType": "Preempt", "ResourceType": "VirtualMachine",
                 "Resources": ["vm-1"], "EventStatus": "Scheduled",
                 "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT", "Description": "…",
                 "EventSource": "Platform", "DurationInSeconds": -1}]}

``NotBefore`` is RFC 1123 from Azure, ISO 8601 from Microsoft's mock server, and empty once the
event has ``Started``. An event that finishes or is cancelled simply disappears from the document.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from runtime.errors import SpotkitError

AZURE_TYPES = ("Freeze", "Reboot", "Redeploy", "Preempt", "Terminate")
# spotkit's own kinds: an operator's drain request and the service manager's SIGTERM.
LOCAL_TYPES = ("Drain", "Sigterm")
EVICTING = ("Preempt", "Terminate", "Reboot", "Redeploy", "Drain", "Sigterm")


class MalformedDocument(SpotkitError):
    """The metadata service answered something that is not a Scheduled Events document."""


@dataclass(frozen=True)
class InterruptionEvent:
    event_id: str
    event_type: str
    status: str  # "Scheduled" | "Started"
    not_before: float | None  # epoch seconds; None when unknown or started
    resources: tuple[str, ...] = ()
    description: str = ""
    source: str = "Platform"  # Platform | User | spotkit
    duration_seconds: int = -1
    origin: str = "imds"  # which event source produced it
    others: tuple[str, ...] = ()  # the other VMs the event names (acknowledging releases it for them too)
    started_seen_at: float | None = None  # when this node first saw it Started (the watcher fills it in)

    def applies_to(self, vm_name: str) -> bool:
        return not self.resources or vm_name in self.resources


def parse_not_before(text: str) -> float | None:
    """RFC 1123 (Azure), ISO 8601 (the mock server) or "" (started): epoch seconds or None."""
    text = text.strip()
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise MalformedDocument(f"NotBefore {text!r} is neither RFC 1123 nor ISO 8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_not_before(epoch: float) -> str:
    """RFC 1123, as Azure writes it."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


@dataclass(frozen=True)
class Document:
    incarnation: int
    events: list[InterruptionEvent]
    skipped: list[str]  # why each unreadable event was left out (another VM's bad field must not hide ours)


def parse_document(body: bytes) -> Document:
    """A Scheduled Events document, read event by event: a mangled event is skipped with its reason,
    a mangled optional field falls back to the cautious reading (an unreadable NotBefore is "now").
    `MalformedDocument` only when the reply is not a document at all."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as err:
        raise MalformedDocument(f"not JSON: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("Events", []), list):
        raise MalformedDocument("expected an object with an Events list")
    events, skipped = [], []
    for raw in doc.get("Events", []):
        try:
            events.append(_parse_event(raw))
        except MalformedDocument as err:
            skipped.append(str(err))
    incarnation = doc.get("DocumentIncarnation", 0)
    try:
        number = int(incarnation) if not isinstance(incarnation, bool) else 0
    except (TypeError, ValueError, OverflowError):
        number = 0
        skipped.append(f"DocumentIncarnation {incarnation!r} is not an integer (read as 0)")
    return Document(number, events, skipped)


def _parse_event(raw: object) -> InterruptionEvent:
    if not isinstance(raw, dict):
        raise MalformedDocument(f"event is not an object: {str(raw)[:80]!r}")
    event_type = raw.get("EventType")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedDocument(f"event without an EventType: {str(raw)[:120]!r}")
    resources = raw.get("Resources") or []
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise MalformedDocument(f"{event_type} event with Resources {resources!r}: cannot tell whom it concerns")
    try:
        not_before = parse_not_before(str(raw.get("NotBefore") or ""))
    except MalformedDocument:
        not_before = None  # cautious: an eviction whose time cannot be read is taken as now
    duration = raw.get("DurationInSeconds", -1)
    try:
        duration_seconds = int(duration) if not isinstance(duration, bool) else -1
    except (TypeError, ValueError, OverflowError):
        duration_seconds = -1
    return InterruptionEvent(
        event_id=str(raw.get("EventId") or _payload_id(raw)), event_type=event_type,
        status=str(raw.get("EventStatus", "Scheduled")), not_before=not_before, resources=tuple(resources),
        description=str(raw.get("Description", "")), source=str(raw.get("EventSource", "Platform")),
        duration_seconds=duration_seconds)


def _payload_id(raw: dict[str, object]) -> str:
    """A stable id for an event that came without one (hash of its content)."""
    return "sha-" + hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class EventStore:
    """Current events per source, de-duplicated by id across sources and polls.

    A source reports its full current set each poll; an event missing from a later report has
    finished or been cancelled. A source that could not be read reports nothing (`keep`), so a
    flaky metadata service never looks like a cancellation.
    """

    _by_source: dict[str, dict[str, InterruptionEvent]] = field(default_factory=dict)
    _first_seen: dict[str, float] = field(default_factory=dict)
    _started_seen: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, source: str, events: list[InterruptionEvent], now: float) -> None:
        with self._lock:
            self._by_source[source] = {e.event_id: e for e in events}
            for event in events:
                self._first_seen.setdefault(event.event_id, now)
                if event.status == "Started":
                    self._started_seen.setdefault(event.event_id, now)

    def current(self) -> list[InterruptionEvent]:
        """The merged current events, each with when it was first seen Started (a Freeze's clock)."""
        with self._lock:
            merged: dict[str, InterruptionEvent] = {}
            for events in self._by_source.values():
                merged.update(events)
            return sorted((replace(e, started_seen_at=self._started_seen.get(e.event_id)) for e in merged.values()),
                          key=lambda e: (e.not_before or 0.0, e.event_id))

    def first_seen(self, event_id: str) -> float | None:
        with self._lock:
            return self._first_seen.get(event_id)
