"""The controller: observe the queue and the slots, decide with `policies.scaling`, act on the
slots, and write every decision with its reason to an audit log in the store.

Observation today is the queue depth (Azure's approximate message count, leased messages
included) times the mean segment length, converted to GPU-seconds with the real-time factor, due
within the deadline — the queue does not say how old each message is. The real-time factor, boot
time, eviction rate and prices come from `inputs` each round (`spotkit.controller.measure`: measured
from the fleet's records, the price book, flags or stated priors) and are written, each with its
source, into the audit record beside the decision and the break-even they imply. Acting:
start deallocated slots (skipping ones that failed to allocate recently — spot capacity comes and
goes), deallocate idle slots first. When no slot can be allocated (``SkuNotAvailable``,
``OverconstrainedAllocationRequest``, quota) the decision falls back to routing work to the
metered API; the routing is written to the store (`runtime.records.RoutingRecord`) for the API workers.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from policies.inputs import FleetInputs
from policies.scaling import Memory, Observation, QueuedJob, ScalingParams, decide
from runtime.queue.base import WorkQueue
from runtime.records import ROUTING_KEY, AuditRecord, RoutingRecord, audit_key, day_of, dump, read_heartbeats
from runtime.store.base import ObjectStore
from spotkit.controller.slots import AllocationFailed, SlotBackend, SlotError

log = logging.getLogger("spotkit.controller")


@dataclass(frozen=True)
class ControllerSettings:
    scaling: ScalingParams  # its boot time, spot price and eviction rate are replaced by each round's inputs
    deadline_seconds: float = 6 * 3600
    segment_seconds: float = 25.0  # mean audio per queued message
    allocation_backoff_seconds: float = 600.0


@dataclass
class Controller:
    slots: SlotBackend
    queue: WorkQueue
    store: ObjectStore
    settings: ControllerSettings
    inputs: Callable[[], FleetInputs]
    clock: Callable[[], float] = time.time
    memory: Memory = field(default_factory=Memory)
    failed_until: dict[str, float] = field(default_factory=dict)

    def once(self) -> dict[str, Any]:
        now = self.clock()
        states = self.slots.list_slots()
        running = [s.name for s in states if s.power == "running"]
        booting = [s.name for s in states if s.power == "starting"]
        available = [s.name for s in states if s.power in ("deallocated", "stopped")
                     and self.failed_until.get(s.name, 0.0) <= now]
        depth = self.queue.approximate_count()
        s = self.settings
        inputs = self.inputs()
        params = replace(s.scaling, boot_seconds=inputs.boot_seconds.value,
                         spot_price_per_hour=inputs.spot_price_per_hour.value,
                         evictions_per_hour=inputs.evictions_per_hour.value)
        queued = self._pseudo_jobs(depth, now, inputs)
        decision = decide(Observation(now, queued, len(running), len(booting), len(available), 0.0),
                          params, self.memory)
        self.memory = decision.memory
        routing = decision.routing
        actions: list[dict[str, Any]] = []
        active = len(running) + len(booting)
        if decision.desired > active:
            started, actions = self._start(available, decision.desired - active, now)
            if started < decision.desired - active and params.allow_api and depth:
                routing = "split" if active + started else "api"
                actions.append({"action": "fallback-to-api", "missing_slots": decision.desired - active - started})
        elif decision.desired < len(running):
            actions = self._deallocate(running, len(running) - decision.desired)
        entry = AuditRecord(now, {"queue_depth": depth, "running": running, "booting": booting,
                                  "available": available}, decision.desired, routing, decision.reason, actions,
                            inputs=inputs.as_dict(), break_even=inputs.break_even())
        self._audit(entry)
        return asdict(entry)

    def _pseudo_jobs(self, depth: int, now: float, inputs: FleetInputs, parts: int = 50) -> tuple[QueuedJob, ...]:
        """The backlog as up to *parts* equal chunks, so part of it can go to GPUs and the rest to the API."""
        s = self.settings
        rtf, per_minute = inputs.audio_rtf.value, inputs.api_price_per_audio_minute.value
        chunks = min(parts, depth)
        jobs = []
        for index in range(chunks):
            messages = depth // chunks + (1 if index < depth % chunks else 0)
            audio = messages * s.segment_seconds
            jobs.append(QueuedJob(index, audio / rtf, now + s.deadline_seconds, audio / 60 * per_minute))
        return tuple(jobs)

    def _start(self, available: list[str], count: int, now: float) -> tuple[int, list[dict[str, Any]]]:
        started, actions = 0, []
        for name in sorted(available):
            if started == count:
                break
            try:
                self.slots.start(name)
                started += 1
                actions.append({"action": "start", "slot": name, "ok": True})
            except AllocationFailed as err:
                self.failed_until[name] = now + self.settings.allocation_backoff_seconds
                actions.append({"action": "start", "slot": name, "ok": False, "code": err.code})
                log.warning("event=allocation-failed slot=%s code=%s (trying the next slot)", name, err.code)
            except SlotError as err:
                actions.append({"action": "start", "slot": name, "ok": False, "error": str(err)})
        return started, actions

    def _deallocate(self, running: list[str], count: int) -> list[dict[str, Any]]:
        beats = {b.node: b for b in read_heartbeats(self.store)}
        # Idle (or drained) nodes first, then the ones with the fewest segments in flight.
        order = sorted(running, key=lambda n: (beats[n].state not in ("idle", "drained") if n in beats else False,
                                              len(beats[n].in_flight) if n in beats else 0, n))
        actions = []
        for name in order[:count]:
            try:
                self.slots.deallocate(name)
                actions.append({"action": "deallocate", "slot": name, "ok": True})
            except SlotError as err:
                actions.append({"action": "deallocate", "slot": name, "ok": False, "error": str(err)})
        return actions

    def _audit(self, entry: AuditRecord) -> None:
        self.store.put_if_absent(audit_key(day_of(entry.at), int(entry.at * 1000), uuid.uuid4().hex[:6]), dump(entry))
        self.store.put(ROUTING_KEY, dump(RoutingRecord(entry.routing, entry.at)))
        log.info("event=decision desired=%s routing=%s reason=%r actions=%s", entry.desired, entry.routing,
                 entry.reason, entry.actions)

    def run(self, interval: float, stop: threading.Event) -> None:
        """Decide every *interval* seconds until *stop*; one failed round is logged, not fatal."""
        while not stop.is_set():
            try:
                self.once()
            except Exception as err:
                log.exception("event=round-failed error=%r", str(err))
            stop.wait(interval)
