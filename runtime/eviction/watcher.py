"""The watcher: poll event sources, decide (`decision.react`), and drive the agent's drain.

It runs in its own thread next to the agent's worker, so a slow metadata service never stalls
work and a busy engine never delays noticing an eviction. Everything it does to the agent goes
through the small `Drainable` protocol, which tests implement with a fake.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from runtime.errors import SpotkitError
from runtime.eviction.alerts import Alerter
from runtime.eviction.decision import DrainPolicy, NodeView, Reaction, react
from runtime.eviction.events import EventStore, InterruptionEvent
from runtime.eviction.sources import EventSource
from runtime.store.base import ObjectStore

log = logging.getLogger("spotkit.watcher")


class Drainable(Protocol):
    def view(self, now: float, drained_for: str | None) -> NodeView: ...
    def begin_drain(self, reason: str) -> int: ...  # stop pulling; requeue unstarted; returns count
    def abandon_batch(self, now: float) -> tuple[int, float]: ...  # requeue the running batch
    def is_drained(self) -> bool: ...
    def totals(self) -> tuple[int, int, float]: ...  # (finished, requeued, wasted GPU s) so far
    def flush(self) -> None: ...  # usage records, heartbeat
    def hold(self, until: float | None) -> None: ...
    def resume(self) -> None: ...


@dataclass
class EvictionRecord:
    node: str
    event_id: str
    event_type: str
    origin: str
    seen_at: float
    not_before: float | None
    notice_seconds: float  # NotBefore − first seen (0 when it came Started)
    drain_started_at: float
    drained_at: float = 0.0
    drain_seconds: float = 0.0  # first seen → drained
    finished: int = 0  # segments completed after the event was seen
    requeued: int = 0
    wasted_gpu_seconds: float = 0.0
    will_acknowledge: bool = False  # written before the approval, which may end the VM at once
    acknowledged_at: float | None = None  # best effort: the VM may be gone before this is stored
    ack_error: str = ""

    def key(self) -> str:
        day = datetime.fromtimestamp(self.seen_at, tz=UTC).strftime("%Y-%m-%d")
        return f"evictions/day={day}/{self.node}-{self.event_id}.json"


@dataclass
class _ActiveDrain:
    record: EvictionRecord
    acknowledge: bool
    baseline: tuple[int, int, float]  # the node's totals when the drain began
    done: bool = False
    extra: dict[str, float] = field(default_factory=dict)


class Watcher:
    def __init__(self, node: str, sources: list[EventSource], agent: Drainable, store: ObjectStore,
                 policy: DrainPolicy, alerter: Alerter, clock: Callable[[], float],
                 acknowledge: Callable[[list[str]], None] | None = None) -> None:
        self.node = node
        self.sources = sources
        self.agent = agent
        self.store = store
        self.policy = policy
        self.alerter = alerter
        self.clock = clock
        self.acknowledge = acknowledge
        self.events = EventStore()
        self.active: _ActiveDrain | None = None
        self.records: list[EvictionRecord] = []
        self.last_reaction: Reaction | None = None
        self._next_poll: dict[str, float] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()

    # -- thread -----------------------------------------------------------------------------
    def poke(self) -> None:
        """Poll again now (a signal arrived)."""
        for source in self.sources:
            self._next_poll[source.name] = 0.0
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def drained(self) -> bool:
        return self.active is not None and self.active.done

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as err:  # the watcher must outlive any one bad iteration
                log.exception("event=watcher-step-failed error=%r", str(err))
            draining = self.active is not None and not self.active.done
            self._wake.wait(0.05 if draining else 0.2)
            self._wake.clear()

    # -- one step ---------------------------------------------------------------------------
    def step(self) -> Reaction:
        now = self.clock()
        for source in self.sources:
            if now >= self._next_poll.get(source.name, 0.0):
                found = source.poll(now)
                if found is not None:
                    self.events.update(source.name, found, now)
                self._next_poll[source.name] = now + source.interval if source.interval else 0.0
        now = self.clock()
        draining_for = self.active.record.event_id if self.active else None
        reaction = react(self.events.current(), self.agent.view(now, draining_for), self.policy)
        if reaction.action != (self.last_reaction.action if self.last_reaction else "run"):
            log.info("node=%s event=reaction action=%s reason=%r", self.node, reaction.action,
                     reaction.reason)
        self.last_reaction = reaction
        if reaction.action == "drain":
            self._drain(reaction, now)
        elif reaction.action == "hold":
            self.agent.hold(reaction.hold_until)
        elif reaction.action == "resume":
            self.agent.hold(None)
            self.agent.resume()
            self.active = None
        else:
            self.agent.hold(None)
        return reaction

    def _drain(self, reaction: Reaction, now: float) -> None:
        event = reaction.event
        assert event is not None and reaction.deadline is not None
        if self.active is None:
            self.active = self._start(event, reaction, now)
        active = self.active
        if not active.done and self.agent.view(now, None).batch_started_at is not None:
            if not reaction.finish_in_flight or now >= reaction.deadline:
                self.agent.abandon_batch(now)
        if not active.done and self.agent.is_drained():
            self._finish(active, self.clock())

    def _start(self, event: InterruptionEvent, reaction: Reaction, now: float) -> _ActiveDrain:
        seen = self.events.first_seen(event.event_id) or now
        notice = max(0.0, (event.not_before or seen) - seen) if event.status != "Started" else 0.0
        record = EvictionRecord(self.node, event.event_id, event.event_type, event.origin, seen,
                                event.not_before, round(notice, 3), now)
        baseline = self.agent.totals()
        self.agent.begin_drain(reaction.reason)
        log.warning("node=%s event=drain-start type=%s id=%s notice=%.1f reason=%r", self.node,
                    event.event_type, event.event_id, notice, reaction.reason)
        return _ActiveDrain(record, reaction.acknowledge, baseline)

    def _finish(self, active: _ActiveDrain, now: float) -> None:
        """Drained: persist what happened, tell on-call, and only then approve the event.

        The order matters: approving lets Azure deallocate the VM at once, so the usage records,
        the eviction record and the alert go out first.
        """
        record = active.record
        record.drained_at = now
        record.drain_seconds = round(now - record.seen_at, 3)
        # Counted by the node itself, so work it hands back on its own during the drain (a batch
        # leased just as the drain began) is counted too.
        finished, requeued, wasted = self.agent.totals()
        record.finished = finished - active.baseline[0]
        record.requeued = requeued - active.baseline[1]
        record.wasted_gpu_seconds = round(wasted - active.baseline[2], 3)
        record.will_acknowledge = active.acknowledge and self.acknowledge is not None
        try:
            self.agent.flush()
        except SpotkitError as err:
            log.warning("node=%s event=flush-failed error=%r", self.node, str(err))
        self._write(record)
        if record.origin != "signal":  # a routine `systemctl stop` is recorded, not paged about
            self.alerter.eviction(asdict(record))
        self.records.append(record)
        active.done = True
        if record.will_acknowledge and self.acknowledge is not None:
            # Give the webhook a moment (never past NotBefore), then approve the event.
            deadline = record.not_before if record.not_before is not None else now
            self.alerter.wait(timeout=max(0.0, min(2.0, deadline - self.clock() - 0.5)))
            try:
                self.acknowledge([record.event_id])
                record.acknowledged_at = self.clock()
            except SpotkitError as err:
                record.ack_error = str(err)
                log.warning("node=%s event=ack-failed id=%s error=%r (the event starts at NotBefore "
                            "anyway)", self.node, record.event_id, str(err))
            self._write(record)  # best effort: the VM may be gone already

    def _write(self, record: EvictionRecord) -> None:
        try:
            self.store.put(record.key(), json.dumps(asdict(record), sort_keys=True).encode())
        except SpotkitError as err:
            log.warning("node=%s event=record-failed error=%r", self.node, str(err))
