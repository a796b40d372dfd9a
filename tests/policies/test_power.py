"""Paid GPU time from the slots' power history: billed from allocation to deallocation or eviction."""

from __future__ import annotations

import pytest

from policies.power import billed_seconds, paid_time
from runtime.records import AuditRecord, PowerEvent

H = 3600.0


def ev(slot: str, state: str, at: float) -> PowerEvent:
    return PowerEvent(slot, state, at, "controller", "Standard_NC4as_T4_v3")


def test_each_slot_is_billed_from_start_to_deallocation_or_eviction() -> None:
    events = [ev("a", "starting", 0), ev("a", "running", 120), ev("a", "deallocated", 2 * H),
              ev("b", "starting", H), ev("b", "running", H + 100), ev("b", "evicted", 3 * H),
              ev("b", "starting", 4 * H), ev("b", "deallocated", 4.5 * H)]
    assert billed_seconds(events, 0, 10 * H) == {"a": 2 * H, "b": 2 * H + 0.5 * H}


def test_a_stopped_vm_is_still_billed_and_a_window_clips_the_spans() -> None:
    """Azure bills a stopped (not deallocated) VM; a slot running across the window's edges is billed
    only inside it, and one still running at the end is billed to the end."""
    events = [ev("a", "running", -5 * H), ev("a", "stopped", H), ev("a", "deallocated", 2 * H),
              ev("c", "running", 9 * H)]
    assert billed_seconds(events, 0, 10 * H) == {"a": 2 * H, "c": H}


def test_the_power_history_wins_over_the_audit_log_and_says_which_it_used() -> None:
    audit = [AuditRecord(at, {"running": ["a"]}, 1, "self-host", "") for at in (0.0, 600.0)]
    power = paid_time([ev("a", "running", 0), ev("a", "deallocated", 300)], audit, 0, H)
    assert power is not None and power.seconds == 300 and power.source.startswith("power-state history")
    assert power.size_of == {"a": "Standard_NC4as_T4_v3"}
    fallback = paid_time([], audit, 0, 1200)
    assert fallback is not None and fallback.seconds == 1200 and fallback.source.startswith("controller audit")
    assert paid_time([], [], 0, H) is None
    assert paid_time([ev("a", "running", 2 * H)], [], 0, H) is None  # only later events: nothing known


def test_at_one_instant_what_was_seen_comes_before_what_was_done() -> None:
    started = PowerEvent("a", "starting", 0, "controller")
    seen = PowerEvent("a", "deallocated", 0, "observed")
    assert billed_seconds([started, seen], 0, H) == {"a": H}  # listed in any order


@pytest.mark.parametrize("state", ["unknown", "weird"])
def test_states_outside_the_vocabulary_are_not_timeline_points(state: str) -> None:
    events = [ev("a", "running", 0), ev("a", state, 100), ev("a", "deallocated", 200)]
    assert billed_seconds(events, 0, H) == {"a": 200}
