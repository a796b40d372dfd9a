"""State of the local metadata service: Scheduled Events for many VMs, one document per VM name.

Behaves like Azure's IMDS as documented: an event is ``Scheduled`` with a ``NotBefore`` until that
time passes or someone approves it with ``StartRequests``, then ``Started`` with an empty
``NotBefore``; finished or cancelled events disappear; ``DocumentIncarnation`` grows whenever a
VM's event list changes. A Started ``Freeze`` completes (disappears) after ``started_listed_seconds``
— its pause, by default its ``DurationInSeconds``. Faults (HTTP errors, garbage, delays, a verbatim
document) can be queued per VM, so clients can be tested against a misbehaving service. The clock
is injected.

``mock_server_quirks`` reproduces Microsoft's sample mock server
(Azure-Samples/scheduled-events-mock-server, checked by hand): ``NotBefore`` in ISO 8601, a **new
EventId** whenever the status changes (the Started event is not the one that was approved), no
instance-metadata endpoint (404), and a Freeze that stays Started for minutes (five, as its live
migration scenario does) whatever its duration.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runtime.eviction.events import format_not_before


@dataclass
class EmulatedEvent:
    event_id: str
    event_type: str
    resources: list[str]
    visible_to: list[str]
    not_before: float
    created_at: float
    description: str = ""
    event_source: str = "Platform"
    duration_seconds: int = -1
    iso_not_before: bool = False  # write NotBefore as ISO 8601, like Microsoft's mock server
    started_at: float | None = None
    acknowledged_at: float | None = None
    acknowledged_by: str = ""
    ended_at: float | None = None
    ended_how: str = ""  # "cancelled" | "completed"
    started_listed_seconds: float | None = None  # a Started Freeze completes after this long
    started_id: str = ""  # mock-server quirk: the id the event carries once Started

    def document(self) -> dict[str, Any]:
        if self.started_at is not None:
            not_before = ""
        elif self.iso_not_before:
            not_before = datetime.fromtimestamp(self.not_before, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            not_before = format_not_before(self.not_before)
        shown = self.started_id if self.started_at is not None and self.started_id else self.event_id
        return {"EventId": shown, "EventType": self.event_type, "ResourceType": "VirtualMachine",
                "Resources": list(self.resources),
                "EventStatus": "Started" if self.started_at is not None else "Scheduled",
                "NotBefore": not_before, "Description": self.description,
                "EventSource": self.event_source, "DurationInSeconds": self.duration_seconds}


@dataclass
class Fault:
    mode: str  # "status" | "garbage" | "delay" | "raw"
    count: int = 1
    status: int = 500
    seconds: float = 0.0
    body: str = ""


MOCK_SERVER_FREEZE_STARTED_SECONDS = 300.0


@dataclass
class MetadataState:
    clock: Callable[[], float] = time.time
    mock_server_quirks: bool = False
    events: dict[str, EmulatedEvent] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    incarnations: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add_event(self, event_type: str, resources: list[str], notice_seconds: float,
                  visible_to: list[str] | None = None, started: bool = False,
                  description: str = "", iso_not_before: bool = False,
                  duration_seconds: int = -1, event_id: str = "") -> EmulatedEvent:
        with self.lock:
            now = self.clock()
            listed = None
            if event_type == "Freeze":
                listed = (MOCK_SERVER_FREEZE_STARTED_SECONDS if self.mock_server_quirks
                          else float(duration_seconds if duration_seconds > 0 else 5))
            event = EmulatedEvent(
                event_id or str(uuid.uuid4()).upper(), event_type, list(resources),
                list(visible_to if visible_to is not None else resources), now + notice_seconds, now,
                description or f"{event_type} emulated by spotkit", duration_seconds=duration_seconds,
                iso_not_before=iso_not_before or self.mock_server_quirks, started_at=now if started else None,
                started_listed_seconds=listed, started_id=str(uuid.uuid4()) if self.mock_server_quirks else "")
            self.events[event.event_id] = event
            self._bump(event.visible_to)
            return event

    def end_event(self, event_id: str, how: str) -> bool:
        with self.lock:
            event = self.events.get(event_id)
            if event is None or event.ended_at is not None:
                return False
            event.ended_at, event.ended_how = self.clock(), how
            self._bump(event.visible_to)
            return True

    def start_due(self) -> list[EmulatedEvent]:
        """Start events whose NotBefore has passed, complete Freezes whose time is up; returns those
        newly started."""
        with self.lock:
            now = self.clock()
            started = []
            for event in self.events.values():
                if event.ended_at is None and event.started_at is None and now >= event.not_before:
                    event.started_at = now
                    self._bump(event.visible_to)
                    started.append(event)
                elif (event.ended_at is None and event.started_at is not None
                      and event.started_listed_seconds is not None
                      and now >= event.started_at + event.started_listed_seconds):
                    event.ended_at, event.ended_how = now, "completed"
                    self._bump(event.visible_to)
            return started

    def document(self, vm: str) -> dict[str, Any]:
        with self.lock:
            self.start_due()
            self.requests[vm] = self.requests.get(vm, 0) + 1
            live = [e.document() for e in self.events.values()
                    if e.ended_at is None and vm in e.visible_to]
            return {"DocumentIncarnation": self.incarnations.get(vm, 0), "Events": live}

    def acknowledge(self, vm: str, event_ids: list[str]) -> list[str]:
        """StartRequests from *vm*: approve those events it can see. Returns the ids approved."""
        with self.lock:
            approved = []
            now = self.clock()
            for event_id in event_ids:
                event = self.events.get(event_id) or next(
                    (e for e in self.events.values() if e.started_id and e.started_id == event_id), None)
                if event is None or event.ended_at is not None or vm not in event.visible_to:
                    continue
                if event.acknowledged_at is None:
                    event.acknowledged_at, event.acknowledged_by = now, vm
                if event.started_at is None:
                    event.started_at = now
                    self._bump(event.visible_to)
                approved.append(event_id)
            return approved

    def add_fault(self, vm: str, fault: Fault) -> None:
        with self.lock:
            self.faults.setdefault(vm, []).append(fault)

    def take_fault(self, vm: str) -> Fault | None:
        with self.lock:
            queue = self.faults.get(vm) or []
            if not queue:
                return None
            fault = queue[0]
            fault.count -= 1
            if fault.count <= 0:
                queue.pop(0)
            return fault

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"events": [vars(e).copy() for e in self.events.values()],
                    "incarnations": dict(self.incarnations), "requests": dict(self.requests)}

    def _bump(self, vms: list[str]) -> None:
        for vm in vms:
            self.incarnations[vm] = self.incarnations.get(vm, 0) + 1
