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


@pytest.mark.parametrize("kind", ["Preempt", "Terminate", "Reboot", "Redeploy"])
def test_evicting_types_drain_by_not_before_minus_margin(kind: str) -> None:
    r = react([ev(kind)], NodeView(NOW), POLICY)
    assert (r.action, r.deadline) == ("drain", NOW + 25)
    assert r.acknowledge is (kind in ("Preempt", "Terminate"))


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
    if evicting:
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
