"""The watcher: poll event sources, decide (`decision.react`), and drive the agent's drain.

It runs in its own thread next to the agent's worker, so a slow metadata service never stalls
work and a busy engine never delays noticing an eviction. Everything it does to the agent goes
through the small `Drainable` protocol, which tests implement with a fake.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Protocol

from runtime.errors import SpotkitError
from runtime.eviction.alerts import Alerter
from runtime.eviction.decision import DrainPolicy, NodeTotals, NodeView, Reaction, ends_paid_time, react
from runtime.eviction.events import EventStore, InterruptionEvent
from runtime.eviction.sources import EventSource
from runtime.records import DrainedMarker, EvictionRecord, PowerEvent, day_of, drained_marker_key, dump, power_key
from runtime.store.base import ObjectStore

log = logging.getLogger("spotkit.watcher")


class Drainable(Protocol):
    """The steps of a drain on a node; the watcher decides when and in what order (`_finish`)."""

    def view(self, now: float, drained_for: str | None) -> NodeView: ...
    def begin_drain(self, reason: str, exit_by: float) -> int: ...  # stop pulling; requeue unstarted
    def abandon_batch(self, now: float) -> tuple[int, float]: ...  # requeue the running batch
    def is_settled(self) -> bool: ...  # draining, no lease held, nothing running
    def totals(self) -> NodeTotals: ...  # what the node has finished, requeued, wasted so far
    def flush_usage(self) -> None: ...
    def mark_drained(self) -> None: ...  # state "drained", written in a final heartbeat
    def release(self) -> None: ...  # the sequence ran: the process may exit
    def hold(self, until: float | None) -> None: ...
    def resume(self) -> None: ...


@dataclass
class _ActiveDrain:
    record: EvictionRecord
    acknowledge: bool
    baseline: NodeTotals  # the node's totals when the drain began
    vm: str = ""  # this VM's name in the event
    ack_after: tuple[str, ...] = ()  # other VMs the event names: acknowledge once they have drained too
    done: bool = False
    awaiting_others: bool = False  # drained, the acknowledgement waits for the other VMs
    page: bool = False  # alert on-call once drained, as the decision said (`decision.pages`)


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
        assert event is not None and reaction.deadline is not None and reaction.exit_by is not None
        if self.active is None:
            self.active = self._start(event, reaction, now)
        active = self.active
        if active.done:
            if active.awaiting_others and event.status == "Started":
                active.awaiting_others = False  # it began without us (NotBefore passed): nothing to approve
            elif active.awaiting_others and self._others_drained(active):
                self._acknowledge(active)
            return
        if reaction.abandon_running:
            self.agent.abandon_batch(now)
        if self.agent.is_settled():
            self._finish(active)

    def _start(self, event: InterruptionEvent, reaction: Reaction, now: float) -> _ActiveDrain:
        assert reaction.exit_by is not None
        seen = self.events.first_seen(event.event_id) or now
        notice = max(0.0, (event.not_before or seen) - seen) if event.status != "Started" else 0.0
        record = EvictionRecord(self.node, event.event_id, event.event_type, event.origin, seen,
                                event.not_before, round(notice, 3), now)
        baseline = self.agent.totals()
        self.agent.begin_drain(reaction.reason, reaction.exit_by)
        log.warning("node=%s event=drain-start type=%s id=%s notice=%.1f reason=%r", self.node,
                    event.event_type, event.event_id, notice, reaction.reason)
        vm = next((r for r in event.resources if r not in event.others), self.node)
        return _ActiveDrain(record, reaction.acknowledge, baseline, vm, reaction.ack_after, page=reaction.page)

    def _finish(self, active: _ActiveDrain) -> None:
        """The node holds nothing any more: the drain sequence, in this order.

        flush usage → final heartbeat saying ``drained`` → eviction record → alert → acknowledgement
        → release the process. The order matters: approving lets Azure deallocate the VM at once, so
        everything on-call and the cost policies need is written first.
        """
        now = self.clock()
        # Counted by the node itself, so work it hands back on its own during the drain (a batch
        # leased just as the drain began) is counted too.
        totals, base = self.agent.totals(), active.baseline
        record = replace(active.record, drained_at=now, drain_seconds=round(now - active.record.seen_at, 3),
                         finished=totals.finished - base.finished, requeued=totals.requeued - base.requeued,
                         wasted_gpu_seconds=round(totals.wasted_gpu_seconds - base.wasted_gpu_seconds, 3),
                         will_acknowledge=active.acknowledge and self.acknowledge is not None)
        try:
            self.agent.flush_usage()
        except SpotkitError as err:
            log.warning("node=%s event=usage-flush-failed error=%r (kept for retry)", self.node, str(err))
        self.agent.mark_drained()
        self._write(record)
        if ends_paid_time(record.origin, record.event_type):
            self._record_evicted(active.vm, record)
        if active.page:  # operator drains and routine stops are recorded, not paged
            self.alerter.eviction(asdict(record))
        active.done = True
        active.record = record
        self.records.append(record)
        if record.will_acknowledge:
            if active.ack_after:
                self._mark_drained(active)
                active.awaiting_others = not self._others_drained(active)
            if not active.awaiting_others:
                # Give the webhook a moment (never past NotBefore), then approve the event.
                deadline = record.not_before if record.not_before is not None else now
                self.alerter.wait(timeout=max(0.0, min(2.0, deadline - self.clock() - 0.5)))
                self._acknowledge(active)
        self.agent.release()

    def _record_evicted(self, vm: str, record: EvictionRecord) -> None:
        """Into the slot's power history, before the approval lets Azure take the VM: paid time ends
        with the eviction (at NotBefore, or now if approved sooner), not at the controller's next look."""
        at = self.clock() if record.not_before is None else min(self.clock(), record.not_before)
        at = max(at, record.seen_at)
        event = PowerEvent(vm, "evicted", at, "watcher", detail=f"{record.event_type} {record.event_id}")
        try:
            self.store.put_if_absent(power_key(day_of(at), vm, int(at * 1000), "evicted"), dump(event))
        except SpotkitError as err:
            log.warning("node=%s event=power-record-failed error=%r", self.node, str(err))

    def _mark_drained(self, active: _ActiveDrain) -> None:
        marker = DrainedMarker(active.record.event_id, active.vm, self.node, self.clock())
        try:
            self.store.put(drained_marker_key(marker.event_id, marker.vm), dump(marker))
        except SpotkitError as err:
            log.warning("node=%s event=drained-marker-failed error=%r", self.node, str(err))

    def _others_drained(self, active: _ActiveDrain) -> bool:
        """Every other VM the event names has drained (its marker is in the store)."""
        try:
            return all(self.store.exists(drained_marker_key(active.record.event_id, vm)) for vm in active.ack_after)
        except SpotkitError:
            return False

    def _acknowledge(self, active: _ActiveDrain) -> None:
        """Approve the event (which may end the VM at once), then note it in the record, best effort."""
        active.awaiting_others = False
        record = active.record
        if self.acknowledge is None:
            return
        try:
            self.acknowledge([record.event_id])
            record = replace(record, acknowledged_at=self.clock())
        except SpotkitError as err:
            record = replace(record, ack_error=str(err))
            log.warning("node=%s event=ack-failed id=%s error=%r (the event starts at NotBefore "
                        "anyway)", self.node, record.event_id, str(err))
        active.record = record
        self.records[-1] = record
        self._write(record)  # best effort: the VM may be gone already

    def _write(self, record: EvictionRecord) -> None:
        try:
            self.store.put(record.key(), dump(record))
        except SpotkitError as err:
            log.warning("node=%s event=record-failed error=%r", self.node, str(err))
