"""The controller: observe the queue and the slots, decide with `policies.scaling`, act on the
slots, and write every decision with its reason to an audit log in the store.

Observation today is the queue depth (Azure's approximate message count, leased messages
included) times the mean segment length, converted to GPU-seconds with the real-time factor, due
within the deadline — the queue does not say how old each message is. The real-time factor, boot
time, eviction rate and prices come from `inputs` each round (`spotkit.controller.measure`: measured
from the fleet's records, the price book, flags or stated priors) and are written, each with its
source, into the audit record beside the decision and the break-even they imply. A GPU is priced
at the size the next start would use: while the stack's ``vmSize`` has no capacity, the fallback size
(``size_price``), so the break-even moves with it. Acting:
start deallocated slots (skipping ones that failed to allocate recently — spot capacity comes and
goes), deallocate idle slots first. When no slot can be allocated (``SkuNotAvailable``,
``OverconstrainedAllocationRequest``, quota) the decision falls back to routing work to the
metered API. The routing is executed, not only written (`runtime.records.RoutingRecord`): work sent to
the API moves to its own queue, where API workers the controller starts do it
(`spotkit.controller.api_path`), within the month's API budget (`policies.budget`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from policies.budget import Budget, BudgetState, api_spend, budget_state
from policies.inputs import FleetInputs, Sourced
from policies.prices import PriceBook, load_price_book
from policies.scaling import Memory, Observation, QueuedJob, ScalingParams, decide
from runtime.errors import SpotkitError
from runtime.eviction.alerts import Alerter
from runtime.queue.base import WorkQueue
from runtime.records import (
    POWER_STATES,
    ROUTING_KEY,
    AuditRecord,
    BacklogRecord,
    BudgetAlert,
    PowerEvent,
    RoutingRecord,
    audit_key,
    budget_alert_key,
    day_of,
    dump,
    power_key,
    read_backlog,
    read_heartbeats,
)
from runtime.store.base import ObjectStore
from spotkit.controller.api_path import ApiPath, move
from spotkit.controller.daily import DailyDuty
from spotkit.controller.eviction_alerts import EvictionAlerts
from spotkit.controller.measure import month_usage
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
    api: ApiPath | None = None  # None: no API path, so nothing is routed there
    budget: Budget = field(default_factory=Budget)
    price_book: PriceBook = field(default_factory=load_price_book)  # prices API translations
    alerter: Alerter = field(default_factory=Alerter)
    memory: Memory = field(default_factory=Memory)
    failed_until: dict[str, float] = field(default_factory=dict)
    size_failed_until: dict[str, float] = field(default_factory=dict)  # a VM size with no capacity now
    # The spot price of a slot size given the primary size's (`InputReader.spot_price_of`); None: one price.
    size_price: Callable[[str, Sourced], Sourced] | None = None
    eviction_alerts: EvictionAlerts | None = None  # fleet-wide: storms, and the daily digest
    daily: list[DailyDuty] = field(default_factory=list)  # usage compaction, media retention (`controller run`)
    _backlog_seen: dict[str, BacklogRecord] = field(default_factory=dict, repr=False)  # immutable: read once
    _power: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)  # slot -> (state, day) recorded

    def once(self) -> dict[str, Any]:
        now = self.clock()
        states = self.slots.list_slots()
        for state in states:
            self._record_power(state.name, state.power, state.size, now, "observed")
        running = [s.name for s in states if s.power == "running"]
        booting = [s.name for s in states if s.power == "starting"]
        size_order = list(dict.fromkeys(s.size for s in states))  # the stack's order: vmSize, then fallbacks
        sizes = {s.name: (size_order.index(s.size), s.size) for s in states}
        available = [s.name for s in states if s.power in ("deallocated", "stopped")
                     and self.failed_until.get(s.name, 0.0) <= now
                     and self.size_failed_until.get(s.size, 0.0) <= now]
        depth = self.queue.approximate_count()
        s = self.settings
        inputs = self.inputs()
        next_size = min((sizes[name] for name in available), default=(0, ""))[1]
        if self.size_price is not None and next_size:  # the next start's size sets the price of a GPU
            inputs = replace(inputs, spot_price_per_hour=self.size_price(next_size, inputs.spot_price_per_hour))
        budget = self._budget(now, inputs)
        alerted = self.eviction_alerts.check(now) if self.eviction_alerts is not None else []
        # Work can go to the API only if there is a path that does it, and the month's budget allows.
        params = replace(s.scaling, boot_seconds=inputs.boot_seconds.value,
                         spot_price_per_hour=inputs.spot_price_per_hour.value,
                         evictions_per_hour=inputs.evictions_per_hour.value,
                         allow_api=s.scaling.allow_api and self.api is not None and budget.routing_allowed)
        queued, chunk_sizes = self._backlog(depth, now, inputs)
        decision = decide(Observation(now, queued, len(running), len(booting), len(available), 0.0),
                          params, self.memory)
        self.memory = decision.memory
        routing = decision.routing
        to_move = depth if routing == "api" else sum(chunk_sizes[i] for i in decision.to_api)
        actions: list[dict[str, Any]] = []
        active = len(running) + len(booting)
        if decision.desired > active:
            started, actions = self._start(available, decision.desired - active, now, sizes)
            missing = decision.desired - active - started
            if missing and params.allow_api and depth:
                routing = "split" if active + started else "api"
                to_move = max(to_move, depth if routing == "api" else math.ceil(depth * missing / decision.desired))
                actions.append({"action": "fallback-to-api", "missing_slots": missing})
        elif decision.desired < len(running):
            actions = self._deallocate(running, len(running) - decision.desired)
        observed: dict[str, Any] = {"queue_depth": depth, "running": running, "booting": booting,
                                    "available": available,
                                    "earliest_deadline": min((j.deadline for j in queued), default=None)}
        if self.api is not None:
            routed, backlog, workers = self._route(routing, to_move)
            actions += routed
            observed.update(api_queue_depth=backlog, api_workers=workers)
        actions += [{"action": "alert", "alert": alert} for alert in alerted]
        for duty in self.daily:
            actions += duty.tick(now)
        entry = AuditRecord(now, observed, decision.desired, routing, decision.reason, actions,
                            inputs=inputs.as_dict(), break_even=inputs.break_even(), budget=budget.as_dict())
        self._audit(entry)
        return asdict(entry)

    def _route(self, routing: str, to_move: int) -> tuple[list[dict[str, Any]], int, int]:
        """Execute the routing: move the work sent to the API into its queue, size the API workers.
        Returns the actions, the API queue's depth and the workers now running."""
        assert self.api is not None
        actions: list[dict[str, Any]] = []
        if routing != "self-host" and to_move > 0:
            moved = move(self.queue, self.api.queue, to_move)
            actions.append({"action": "route-to-api", "messages": moved})
        backlog = self.api.queue.approximate_count()
        target = self.api.workers_for(backlog, routing)
        if target != self.api.workers.running():
            actions += self.api.workers.scale(target)
        return actions, backlog, target

    def _budget(self, now: float, inputs: FleetInputs) -> BudgetState:
        """The month's API spend against its cap; crossing 80 % or 100 % alerts once a month."""
        month, usage = month_usage(self.store, now)
        spent, unpriced = api_spend(usage, inputs.api_price_per_audio_minute.value, self.price_book)
        state = budget_state(self.budget, month, spent, unpriced)
        if state.level:
            alert = BudgetAlert(month, state.level, state.spent_usd, state.cap_usd, now)
            if self.store.put_if_absent(budget_alert_key(month, state.level.rstrip("%")), dump(alert)):
                self.alerter.notify("api-budget", (
                    f":money_with_wings: spotkit's metered-API spend for {month} is ${state.spent_usd:.2f}, "
                    f"{state.level} of the ${state.cap_usd:.2f} cap"
                    + ("; no more work is routed to the API" if not state.routing_allowed else "")), asdict(alert))
        return state

    def _backlog(self, depth: int, now: float, inputs: FleetInputs,
                 parts: int = 50) -> tuple[tuple[QueuedJob, ...], list[int]]:
        """The queue as chunks with their own deadlines, and how many messages each holds.

        The queue says only how deep it is; each submission left a `BacklogRecord` (its messages, its
        speech, its deadline). The depth is attributed to the records newest first — the queue is
        worked oldest first, so what is still queued is the newest work — and what no record explains
        (translations fanned out, work queued before records existed) is due after the default
        deadline. A record no message is left for, submitted over an hour ago, is done: it is deleted,
        so the listing stays as small as the backlog. At most *parts* chunks, merged by deadline."""
        s = self.settings
        self._backlog_seen = read_backlog(self.store, self._backlog_seen)
        left, pieces = depth, []  # (deadline, messages, audio seconds)
        for key in sorted(self._backlog_seen, reverse=True):  # keys sort by submission time
            record = self._backlog_seen[key]
            take = min(record.segments, left)
            if take:
                pieces.append((record.deadline_at, take, record.audio_seconds * take / max(1, record.segments)))
                left -= take
            elif record.submitted_at < now - 3600:
                self.store.delete(key)
                del self._backlog_seen[key]
        if left:
            pieces.append((now + s.deadline_seconds, left, left * s.segment_seconds))
        # A large submission is cut into pieces too, so the policy can send part of it to the API.
        pieces = sorted((deadline, share, audio * share / messages) for deadline, messages, audio in pieces
                        for share in _split(messages, max(1, round(parts * messages / max(1, depth)))))
        rtf, per_minute = inputs.audio_rtf.value, inputs.api_price_per_audio_minute.value
        jobs: list[QueuedJob] = []
        sizes: list[int] = []
        per_chunk = math.ceil(len(pieces) / parts) if pieces else 1
        for index in range(0, len(pieces), per_chunk):
            group = pieces[index:index + per_chunk]
            audio, messages = sum(p[2] for p in group), sum(p[1] for p in group)
            jobs.append(QueuedJob(len(jobs), audio / rtf, group[0][0], audio / 60 * per_minute))
            sizes.append(messages)
        return tuple(jobs), sizes

    def _start(self, available: list[str], count: int, now: float,
               sizes: dict[str, tuple[int, str]]) -> tuple[int, list[dict[str, Any]]]:
        """Start *count* slots, the stack's first size first, falling to the next size on no capacity.

        Like SkyPilot's ``EAGER_NEXT_REGION``, a capacity failure moves on at once instead of retrying
        the same place; here the unit is the VM size (the stack's ``vmSize`` then ``fallbackSizes``):

            t0   start slot-1 (NC4as_T4_v3)   -> SkuNotAvailable: NC4as_T4_v3 sits out the back-off
            t0   (slot-2, also NC4as_T4_v3, is not tried: the same size would fail the same way)
            t0   start nc8as-1 (NC8as_T4_v3)  -> running
            ...  every size failed            -> the missing capacity is routed to the API
            t0 + allocation_backoff_seconds   -> NC4as_T4_v3 is tried first again

        Each attempt is an action in the audit record, so the sequence can be read back. *sizes* maps
        each slot to (its size's rank in the stack's order, its size)."""
        order = sorted(available, key=lambda name: (sizes.get(name, (0, ""))[0], name))
        started, actions = 0, []
        for name in order:
            if started == count:
                break
            size = sizes.get(name, (0, ""))[1]
            if size and self.size_failed_until.get(size, 0.0) > now:
                continue
            try:
                self.slots.start(name)
                self._record_power(name, "starting", size, self.clock(), "controller")
                started += 1
                actions.append({"action": "start", "slot": name, "size": size, "ok": True})
            except AllocationFailed as err:
                self.failed_until[name] = now + self.settings.allocation_backoff_seconds
                if size:
                    self.size_failed_until[size] = now + self.settings.allocation_backoff_seconds
                actions.append({"action": "start", "slot": name, "size": size, "ok": False, "code": err.code})
                log.warning("event=allocation-failed slot=%s size=%s code=%s (trying the next size)",
                            name, size, err.code)
            except SlotError as err:
                actions.append({"action": "start", "slot": name, "size": size, "ok": False, "error": str(err)})
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
                self._record_power(name, "deallocated", "", self.clock(), "controller")
                actions.append({"action": "deallocate", "slot": name, "ok": True})
            except SlotError as err:
                actions.append({"action": "deallocate", "slot": name, "ok": False, "error": str(err)})
        return actions

    def _record_power(self, slot: str, state: str, size: str, at: float, by: str) -> None:
        """A change of *slot*'s power state — ``observed`` in this round's listing, or caused by the
        ``controller`` — into its history (paid GPU time: `policies.power`). An unchanged state writes
        nothing within a UTC day; the first round of each day records every slot's state again, so a
        day's partition always says how each slot stood, and readers need only their window's days and
        the one before (`read_power_span`). A restarted controller records what it first sees again."""
        day = day_of(at)
        if state not in POWER_STATES or self._power.get(slot) == (state, day):
            return
        self._power[slot] = (state, day)
        try:
            self.store.put_if_absent(power_key(day, slot, int(at * 1000), state),
                                     dump(PowerEvent(slot, state, at, by, size)))
        except SpotkitError as err:  # the history has a gap; the next change is recorded again
            self._power.pop(slot, None)
            log.warning("event=power-record-failed slot=%s state=%s error=%r", slot, state, str(err))

    def _audit(self, entry: AuditRecord) -> None:
        self.store.put_if_absent(audit_key(day_of(entry.at), int(entry.at * 1000), uuid.uuid4().hex[:6]), dump(entry))
        self.store.put(ROUTING_KEY, dump(RoutingRecord(entry.routing, entry.at)))
        log.info("event=decision desired=%s routing=%s reason=%r actions=%s", entry.desired, entry.routing,
                 entry.reason, entry.actions)

    def run(self, interval: float, stop: threading.Event) -> None:
        """Decide every *interval* seconds until *stop*; one failed round is logged, not fatal. On stop,
        the API workers it started are stopped too (they drain: what they hold goes back to their queue)."""
        while not stop.is_set():
            try:
                self.once()
            except Exception as err:
                log.exception("event=round-failed error=%r", str(err))
            stop.wait(interval)
        if self.api is not None:
            for action in self.api.workers.scale(0):
                log.info("event=controller-stopped %s", action)


def _split(total: int, parts: int) -> list[int]:
    """*total* as at most *parts* near-equal positive shares."""
    parts = max(1, min(total, parts))
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]
