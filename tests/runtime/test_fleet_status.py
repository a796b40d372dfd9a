"""The fleet status's assembly, pure: what is stale, stuck or growing, decided at an injected time."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from runtime.fleet_status import (
    Observations,
    assemble,
    heartbeat_max_age,
)
from runtime.queue.base import QueueDepth
from runtime.records import AuditRecord, BootRecord, EvictionRecord, Heartbeat, RoutingRecord

NOW = 1_800_000_000.0
STALE = 30.0


@dataclass(frozen=True)
class Slot:  # what the controller's slot backend answers (spotkit.controller.slots.SlotState)
    name: str
    power: str
    size: str = ""
    address: str = ""


def beat(node: str, age: float, state: str = "working", in_flight: tuple[str, ...] = (),
         lease_expires_at: float = 0.0) -> Heartbeat:
    return Heartbeat(node, state, "0.1.0", NOW - age, list(in_flight), 3, 1, 0, lease_expires_at)


def seen(**given: object) -> Observations:
    base = Observations(at=NOW, queue_name="work", slots=[], queue=QueueDepth(0, 0, None),
                        poison=QueueDepth(0, 0, None))
    return replace(base, **given)  # type: ignore[arg-type]


def kinds(status: object) -> list[tuple[str, str | None]]:
    return [(p.kind, p.node) for p in status.problems]  # type: ignore[attr-defined]


def test_a_fresh_fleet_has_no_problems_and_joins_slots_heartbeats_and_boots() -> None:
    boot = BootRecord("slot-1", NOW - 600, 4.0, 700.0, True, "faster-whisper", "0.1.0", 40.0, "large-v3")
    status = assemble(seen(slots=[Slot("slot-1", "running", "NC4as_T4_v3", "10.0.0.4"), Slot("slot-2", "deallocated")],
                           heartbeats=[beat("slot-1", 2.0, in_flight=("s1", "s2"), lease_expires_at=NOW + 40),
                                       beat("api-1", 1.0, "idle")],
                           boots={"slot-1": boot}, drain_requested=frozenset({"slot-1"})), STALE)
    assert status.problems == ()
    one, two, api = status.nodes
    assert (one.node, one.power, one.size, one.address, one.agent_state) == (
        "slot-1", "running", "NC4as_T4_v3", "10.0.0.4", "working")
    assert (one.heartbeat_age_seconds, one.in_flight, one.lease_expires_in_seconds) == (2.0, ("s1", "s2"), 40.0)
    assert (one.version, one.engine, one.model, one.drain_requested) == ("0.1.0", "faster-whisper", "large-v3", True)
    assert (two.node, two.power, two.agent_state, two.heartbeat_age_seconds, two.address) == (
        "slot-2", "deallocated", None, None, None)
    assert (api.node, api.power, api.engine) == ("api-1", "no-slot", None)  # a heartbeat with no slot behind it
    json.dumps(status.as_dict())  # every field is JSON


def test_a_silent_node_on_a_running_slot_is_stale_but_a_deallocated_one_is_expected_to_be() -> None:
    status = assemble(seen(slots=[Slot("on", "running"), Slot("off", "deallocated")],
                           heartbeats=[beat("on", 31.0, "idle"), beat("off", 500.0, "idle"),
                                       beat("done", 9000.0, "drained")]), STALE)
    assert kinds(status) == [("stale-heartbeat", "on")]
    [problem] = status.problems
    assert (problem.severity, problem.age_seconds, problem.stale_after_seconds) == ("critical", 31.0, STALE)
    by_name = {n.node: n for n in status.nodes}
    assert by_name["on"].agent_state == "silent" and by_name["off"].agent_state == "silent"
    assert by_name["done"].agent_state == "drained" and not by_name["done"].stuck
    assert not assemble(seen(slots=[Slot("on", "running")], heartbeats=[beat("on", 29.0, "idle")]), STALE).problems


def test_a_silent_node_whose_leases_have_not_run_out_is_stuck() -> None:
    held = beat("dead", 45.0, in_flight=("a", "b", "c"), lease_expires_at=NOW + 15)
    status = assemble(seen(slots=[Slot("dead", "deallocated")], heartbeats=[held]), STALE)
    [stuck] = status.problems
    assert (stuck.kind, stuck.node, stuck.in_flight, stuck.lease_expires_in_seconds) == ("stuck-lease", "dead", 3, 15.0)
    assert status.nodes[0].stuck and "run out in 15 s" in stuck.message
    # Once the leases run out the segments are back in the queue: stale, no longer stuck.
    later = assemble(replace(seen(slots=[Slot("dead", "running")], heartbeats=[held]), at=NOW + 16), STALE)
    assert kinds(later) == [("stale-heartbeat", "dead")] and not later.nodes[0].stuck
    # A heartbeat that does not say when its leases run out, with segments in flight: they may be held.
    unknown = assemble(seen(heartbeats=[beat("old", 60.0, in_flight=("a",))]), STALE)
    assert [(p.kind, p.lease_expires_in_seconds) for p in unknown.problems] == [("stuck-lease", None),
                                                                                ("stale-heartbeat", None)]
    # Fresh and holding leases is work, not a problem.
    assert not assemble(seen(heartbeats=[beat("busy", 1.0, in_flight=("a",), lease_expires_at=NOW + 50)]),
                        STALE).problems


def test_the_threshold_is_the_callers_and_at_least_30_seconds_by_default() -> None:
    assert heartbeat_max_age(5.0) == 30.0 and heartbeat_max_age(20.0) == 60.0
    status = assemble(seen(heartbeats=[beat("n", 3.0, "idle")]), stale_after=2.0)
    assert kinds(status) == [("stale-heartbeat", "n")] and status.stale_after_seconds == 2.0


def test_a_failed_agent_is_named() -> None:
    status = assemble(seen(slots=[Slot("n", "running")], heartbeats=[beat("n", 500.0, "failed")]), STALE)
    assert kinds(status) == [("node-failed", "n")] and status.problems[0].severity == "warning"


def test_a_poison_queue_is_a_warning_when_old_and_critical_when_growing() -> None:
    old = seen(poison=QueueDepth(2, 2, NOW - 7200), poisoned_at=[NOW - 7200, NOW - 7100])
    quiet = assemble(old, STALE)
    assert [(p.kind, p.severity, p.poisoned) for p in quiet.problems] == [("poison-nonempty", "warning", 2)]
    # More than at the last look (a watch's previous frame).
    grown = assemble(replace(old, poison=QueueDepth(3, 3, NOW - 7200)), STALE, previous=quiet)
    [problem] = grown.problems
    assert (problem.kind, problem.poisoned, problem.previous_poisoned) == ("poison-growing", 3, 2)
    # Or one poisoned within the hour, without a previous look.
    recent = assemble(replace(old, poisoned_at=[NOW - 7200, NOW - 60]), STALE)
    assert [(p.kind, p.last_poisoned_at) for p in recent.problems] == [("poison-growing", NOW - 60)]
    assert "2 → 3" in problem.message and "60 s ago" in recent.problems[0].message


def test_what_a_backend_cannot_say_is_unknown_not_zero() -> None:
    deep = assemble(seen(queue=QueueDepth(40, None, NOW - 90), slots=None,
                         unavailable={"slots": "no local fleet is running", "poison-queue": "refused"},
                         poison=None, heartbeats=[beat("n", 1.0, "idle")]), STALE)
    q = deep.queue
    assert (q.total, q.visible, q.leased, q.poisoned, q.oldest_age_seconds, q.oldest_known) == (
        40, None, None, None, 90.0, True)
    assert deep.nodes[0].power == "unknown"
    assert [(p.kind, p.source) for p in deep.problems] == [("unavailable", "poison-queue"), ("unavailable", "slots")]
    undated = assemble(seen(queue=QueueDepth(3, 2, None)), STALE).queue
    assert (undated.visible, undated.leased, undated.oldest_age_seconds, undated.oldest_known) == (2, 1, None, False)
    empty = assemble(seen(), STALE).queue
    assert (empty.visible, empty.oldest_age_seconds, empty.oldest_known) == (0, None, True)  # none waiting
    gone = assemble(seen(queue=None, unavailable={"queue": "unreachable"}), STALE).queue
    assert (gone.total, gone.visible, gone.leased, gone.oldest_known) == (None, None, None, False)


def test_critical_problems_come_first() -> None:
    status = assemble(seen(poison=QueueDepth(1, 1, NOW - 9000), poisoned_at=[NOW - 9000],
                           heartbeats=[beat("n", 100.0, "idle")], unavailable={"slots": "x"}), STALE)
    assert [p.severity for p in status.problems] == ["critical", "warning", "warning"]
    assert status.problems[0].kind == "stale-heartbeat"


def test_routing_api_workers_and_the_last_days_evictions() -> None:
    def eviction(node: str, age: float) -> EvictionRecord:
        return EvictionRecord(node, f"e{age}", "Preempt", "imds", NOW - age, None, 30.0, NOW - age)

    decision = AuditRecord(NOW - 50, {"queue_depth": 4, "api_workers": 2, "api_queue_depth": 9}, 1, "split", "why")
    status = assemble(seen(routing=RoutingRecord("split", NOW - 50), last_decision=decision,
                           api_queue=QueueDepth(9, 7, NOW - 20),
                           evictions=[eviction("a", 90_000), eviction("b", 3600), eviction("a", 60)]), STALE)
    assert (status.api.routing, status.api.routing_at, status.api.workers, status.api.workers_at) == (
        "split", NOW - 50, 2, NOW - 50)
    assert status.api.queue is not None and (status.api.queue.visible, status.api.queue.leased) == (7, 2)
    assert [e.node for e in status.evictions_24h] == ["b", "a"]  # the one 25 h ago is out of the window
    assert status.as_dict()["evictions_24h"]["by_node"] == {"a": 1, "b": 1}
    none_yet = assemble(seen(), STALE).api
    assert (none_yet.routing, none_yet.workers, none_yet.queue) == (None, None, None)
