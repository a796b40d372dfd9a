"""Paid GPU time, from the slots' power history: one owner for "how long were we billed".

Azure bills a VM's compute from allocation to deallocation, whatever it does meanwhile, so paid time
is the time each slot spent in a billed power state (`runtime.records.UNBILLED_STATES` are the only
exceptions). The controller records every change it observes or causes (`PowerEvent`) and the
watcher records evictions, so a slot's state at any moment is its last event before it.

Before the power history existed, paid time was integrated from the controller's audit log (running
slots × time between decisions); that stays as the fallback for months without a power history, and
the answer says which one it is. Pure: the records are read by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from runtime.records import POWER_STATES, UNBILLED_STATES, AuditRecord, PowerEvent


@dataclass(frozen=True)
class PaidTime:
    seconds: float
    source: str  # what it was integrated from, for people
    by_slot: dict[str, float] = field(default_factory=dict)
    size_of: dict[str, str] = field(default_factory=dict)  # the slot's VM size, where the records say


def billed_seconds(events: Iterable[PowerEvent], start: float, end: float) -> dict[str, float]:
    """Seconds each slot spent in a billed state within [start, end). A slot's state before its first
    event is unknown and not billed; after its last event it stays in that state until *end*."""
    by_slot: dict[str, list[PowerEvent]] = {}
    for event in events:
        if event.state in POWER_STATES:
            by_slot.setdefault(event.slot, []).append(event)
    paid: dict[str, float] = {}
    for slot, timeline in by_slot.items():
        timeline.sort(key=_order)
        total = 0.0
        for event, after in zip(timeline, [*timeline[1:], None], strict=True):
            if event.state in UNBILLED_STATES:
                continue
            span_end = end if after is None else after.at
            total += max(0.0, min(span_end, end) - max(event.at, start))
        paid[slot] = total
    return paid


def _order(event: PowerEvent) -> tuple[float, bool]:
    """Time order; at one instant an observation comes before what was done after seeing it (the
    controller sees a slot deallocated, then starts it)."""
    return event.at, event.by != "observed"


def audit_seconds(audit: Iterable[AuditRecord], now: float, max_gap_seconds: float = 900.0) -> float:
    """Running slots × time between decisions, summed; a gap longer than *max_gap_seconds* (the
    controller was down) counts as no longer than that, so an outage is not billed as running."""
    ordered = sorted(audit, key=lambda entry: entry.at)
    total = 0.0
    ends = [entry.at for entry in ordered[1:]] + [now]
    for entry, end in zip(ordered, ends[:len(ordered)], strict=True):
        span = min(end - entry.at, max_gap_seconds)
        total += len(entry.observed.get("running", [])) * max(0.0, span)
    return total


def paid_time(events: Iterable[PowerEvent], audit: Iterable[AuditRecord], start: float, end: float) -> PaidTime | None:
    """Paid time in [start, end): from the power history when it covers the window (it has an event
    before *end*), else from the audit log, else None (nothing says when slots ran)."""
    known = [e for e in events if e.at < end]
    if known:
        by_slot = billed_seconds(known, start, end)
        sizes = {e.slot: e.size for e in known if e.size}
        return PaidTime(sum(by_slot.values()), f"power-state history ({len(known)} events)", by_slot, sizes)
    decisions = [a for a in audit if start <= a.at < end]
    if decisions:
        return PaidTime(audit_seconds(decisions, end), f"controller audit log ({len(decisions)} decisions)")
    return None
