"""The drain decision, exhaustively: every event type × status × timing, and invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.eviction.decision import DrainPolicy, NodeView, react
from runtime.eviction.events import AZURE_TYPES, EVICTING, LOCAL_TYPES, InterruptionEvent

POLICY = DrainPolicy(safety_margin_seconds=5.0)
NOW = 1000.0


def ev(kind: str, not_before: float | None = NOW + 30, status: str = "Scheduled", eid: str = "e1",
       origin: str = "imds") -> InterruptionEvent:
    return InterruptionEvent(eid, kind, status, not_before, ("vm",), origin=origin)


def test_no_events_runs() -> None:
    assert react([], NodeView(NOW), POLICY).action == "run"


@pytest.mark.parametrize("kind", ["Preempt", "Terminate"])
def test_evicting_types_drain_by_not_before_minus_margin(kind: str) -> None:
    r = react([ev(kind)], NodeView(NOW), POLICY)
    assert (r.action, r.deadline, r.acknowledge) == ("drain", NOW + 25, True)


@pytest.mark.parametrize("kind", ["Reboot", "Redeploy"])
def test_long_notice_events_work_until_the_deadline_minus_a_batch_then_drain_and_ack(kind: str) -> None:
    """A Reboot 15 minutes out: keep working (no batch straddling the deadline), drain one batch before
    it, acknowledge once drained so the VM restarts at once instead of idling until NotBefore."""
    event = ev(kind, NOW + 900)
    early = react([event], NodeView(NOW, predicted_batch_seconds=40), POLICY)
    assert (early.action, early.hold_until) == ("hold", NOW + 895)
    late = react([event], NodeView(NOW + 856, predicted_batch_seconds=40), POLICY)
    assert (late.action, late.deadline, late.acknowledge) == ("drain", NOW + 895, True)
    begun = react([event], NodeView(NOW, predicted_batch_seconds=40, drained_for="e1"), POLICY)
    assert begun.action == "drain"  # once draining, it stays drained


def test_an_event_naming_other_vms_is_acknowledged_only_after_them() -> None:
    shared = InterruptionEvent("e1", "Preempt", "Scheduled", NOW + 30, ("vm", "vm-2", "vm-3"),
                               others=("vm-2", "vm-3"))
    r = react([shared], NodeView(NOW), POLICY)
    assert r.acknowledge and r.ack_after == ("vm-2", "vm-3")
    assert react([ev("Preempt")], NodeView(NOW), POLICY).ack_after == ()


def test_a_started_freeze_holds_only_for_its_duration() -> None:
    freeze = InterruptionEvent("f", "Freeze", "Started", None, ("vm",), duration_seconds=9, started_seen_at=NOW)
    assert react([freeze], NodeView(NOW + 5), POLICY).action == "hold"
    assert react([freeze], NodeView(NOW + 15), POLICY).action == "run"  # still listed, no longer holding
    unknown = InterruptionEvent("f", "Freeze", "Started", None, ("vm",), started_seen_at=NOW)
    assert react([unknown], NodeView(NOW + 30), POLICY).action == "hold"
    assert react([unknown], NodeView(NOW + POLICY.max_freeze_hold_seconds + 6), POLICY).action == "run"


@pytest.mark.parametrize("status, not_before", [("Started", None), ("Scheduled", None),
                                                ("Scheduled", NOW - 60), ("Scheduled", NOW + 2)])
def test_started_missing_or_past_deadline_is_now(status: str, not_before: float | None) -> None:
    r = react([ev("Preempt", not_before, status)], NodeView(NOW), POLICY)
    assert r.action == "drain" and r.deadline == NOW


@pytest.mark.parametrize("started, predicted, fits", [
    (NOW - 1, 10, True),  # ends at NOW+9, deadline NOW+25
    (NOW - 1, 26, True),  # ends exactly at the deadline
    (NOW - 1, 27, False),
    (NOW - 100, 200, False),
])
def test_running_batch_finishes_only_if_it_fits(started: float, predicted: float, fits: bool) -> None:
    r = react([ev("Preempt")], NodeView(NOW, started, predicted), POLICY)
    assert r.finish_in_flight is fits


def test_short_notice_requeues_a_running_batch() -> None:
    r = react([ev("Preempt", NOW + 3)], NodeView(NOW, NOW - 0.5, 2.0), POLICY)
    assert (r.deadline, r.finish_in_flight, r.abandon_running) == (NOW, False, True)


def test_a_batch_still_running_at_the_deadline_is_abandoned_whatever_was_predicted() -> None:
    """The prediction said it would fit; the deadline came and it is still running: requeue it now."""
    r = react([ev("Preempt", NOW + 5)], NodeView(NOW, NOW - 10, 1.0), POLICY)
    assert (r.deadline, r.finish_in_flight, r.abandon_running) == (NOW, False, True)


def test_nothing_running_abandons_nothing() -> None:
    r = react([ev("Preempt")], NodeView(NOW), POLICY)
    assert (r.finish_in_flight, r.abandon_running, r.exit_by) == (False, False, NOW + 30)


def test_earliest_deadline_wins() -> None:
    later, sooner = ev("Reboot", NOW + 900, eid="late"), ev("Preempt", NOW + 30, eid="soon")
    r = react([later, sooner], NodeView(NOW), POLICY)
    assert r.event == sooner


def test_eviction_beats_freeze() -> None:
    r = react([ev("Freeze", NOW + 10, eid="f"), ev("Preempt", NOW + 30, eid="p")], NodeView(NOW), POLICY)
    assert r.action == "drain" and r.event is not None and r.event.event_id == "p"


def test_freeze_scheduled_holds_back_straddling_batches() -> None:
    r = react([ev("Freeze", NOW + 60)], NodeView(NOW), POLICY)
    assert (r.action, r.hold_until) == ("hold", NOW + 55)


def test_freeze_started_holds_everything() -> None:
    r = react([ev("Freeze", None, "Started")], NodeView(NOW), POLICY)
    assert (r.action, r.hold_until) == ("hold", NOW)


def test_cancelled_event_resumes_a_drained_node() -> None:
    assert react([], NodeView(NOW, drained_for="e1"), POLICY).action == "resume"


@pytest.mark.parametrize("kind, origin", [("Drain", "drain-request"), ("Sigterm", "signal"),
                                          ("Preempt", "replay")])
def test_only_imds_events_are_acknowledged(kind: str, origin: str) -> None:
    r = react([ev(kind, origin=origin)], NodeView(NOW), POLICY)
    assert r.action == "drain" and not r.acknowledge


events = st.builds(
    InterruptionEvent,
    event_id=st.sampled_from(["a", "b", "c"]),
    event_type=st.sampled_from(AZURE_TYPES + LOCAL_TYPES),
    status=st.sampled_from(["Scheduled", "Started"]),
    not_before=st.one_of(st.none(), st.floats(NOW - 100, NOW + 1000)),
)


@given(st.lists(events, max_size=4), st.one_of(st.none(), st.floats(NOW - 50, NOW)),
       st.floats(0, 100), st.sampled_from([None, "a"]))
def test_invariants(evs: list[InterruptionEvent], started: float | None, predicted: float,
                    drained_for: str | None) -> None:
    r = react(evs, NodeView(NOW, started, predicted, drained_for), POLICY)
    evicting = [e for e in evs if e.event_type in EVICTING]
    if evicting and r.action == "hold":  # a long-notice event, still far enough away to keep working
        assert r.event is not None and r.event.event_type in POLICY.work_until_types and drained_for is None
        assert r.hold_until is not None and r.hold_until - predicted > NOW
    elif evicting:
        assert r.action == "drain" and r.deadline is not None and r.deadline >= NOW
        assert r.event in evicting
        if r.finish_in_flight:
            assert started is not None and started + predicted <= r.deadline and NOW < r.deadline
        elif started is not None:
            assert started + predicted > r.deadline or NOW >= r.deadline
        assert r.abandon_running is (started is not None and not r.finish_in_flight)
        assert r.exit_by == r.deadline + POLICY.safety_margin_seconds
    elif any(e.event_type == "Freeze" for e in evs):
        assert r.action == "hold" and r.hold_until is not None and r.hold_until >= NOW
    else:
        assert r.action == ("resume" if drained_for else "run")
