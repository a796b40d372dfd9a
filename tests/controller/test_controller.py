"""The controller against a local Azure Resource Manager stand-in, and against the local fleet."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.pipeline.policies import SansIOHTTPPolicy

from policies.inputs import given
from policies.power import paid_time
from policies.scaling import ScalingParams
from runtime.queue.sqlite_queue import SqliteQueue
from runtime.records import ROUTING_KEY, day_of, dump, read_audit, read_power
from runtime.store.file_store import FileStore
from spotkit.controller.api_path import ApiPath, ApiWorkers
from spotkit.controller.azure_slots import AzureSlots
from spotkit.controller.loop import Controller, ControllerSettings
from spotkit.controller.slots import AllocationFailed, SlotError
from tests.conftest import FakeClock
from tests.support.arm_emulator import ArmEmulator

SUB, RG = "00000000-0000-0000-0000-000000000001", "spotkit-dev"
SLOTS = ["slot-1", "slot-2", "slot-3"]


class NoCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("test-token", 2_000_000_000)


@pytest.fixture
def arm() -> Iterator[ArmEmulator]:
    emulator = ArmEmulator({name: "deallocated" for name in SLOTS})
    yield emulator
    emulator.stop()


def slots(arm: ArmEmulator) -> AzureSlots:
    # Plain HTTP to the stand-in: swap the bearer-token policy (it insists on TLS) for a no-op.
    return AzureSlots(SUB, RG, SLOTS, credential=NoCredential(), base_url=arm.url,
                      authentication_policy=SansIOHTTPPolicy(), polling_interval=0)


def test_power_states_start_and_deallocate(arm: ArmEmulator) -> None:
    backend = slots(arm)
    assert [s.power for s in backend.list_slots()] == ["deallocated"] * 3
    backend.start("slot-2")
    assert arm.state.power["slot-2"] == "running"
    assert ("start", "slot-2") in arm.state.calls
    backend.deallocate("slot-2")
    assert arm.state.power["slot-2"] == "deallocated"


@pytest.mark.parametrize("mode, code", [("sync", "SkuNotAvailable"), ("async", "OverconstrainedAllocationRequest"),
                                        ("sync", "OperationNotAllowed")])
def test_allocation_failures_are_mapped(arm: ArmEmulator, mode: str, code: str) -> None:
    if mode == "sync":
        arm.state.sync_failures["slot-1"] = (409, code)
    else:
        arm.state.async_failures["slot-1"] = code
    with pytest.raises(AllocationFailed) as err:
        slots(arm).start("slot-1")
    assert err.value.code == code and err.value.slot == "slot-1"


def test_other_errors_are_slot_errors(arm: ArmEmulator) -> None:
    arm.state.sync_failures["slot-1"] = (500, "InternalServerError")
    with pytest.raises(SlotError, match="InternalServerError") as err:
        slots(arm).start("slot-1")
    assert not isinstance(err.value, AllocationFailed)
    with pytest.raises(SlotError, match="ResourceNotFound"):
        AzureSlots(SUB, RG, ["ghost"], credential=NoCredential(), base_url=arm.url,
                   authentication_policy=SansIOHTTPPolicy()).list_slots()


INPUTS = given(audio_rtf=10, boot_seconds=180, evictions_per_hour=0.05, spot_price_per_hour=0.0627,
               api_price_per_audio_minute=0.006)


class DepthOnly:
    """All the controller reads from a queue is its depth; this one has a scripted depth."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def approximate_count(self) -> int:
        return self.depth


def controller(arm: ArmEmulator, tmp_path: Path, clock: FakeClock) -> tuple[Controller, SqliteQueue, FileStore]:
    queue, store = SqliteQueue(tmp_path / "q.db", clock=clock), FileStore(tmp_path / "store")
    params = ScalingParams(max_slots=3, boot_seconds=180, spot_price_per_hour=0.0627, evictions_per_hour=0.05)
    settings = ControllerSettings(scaling=params, deadline_seconds=3600, segment_seconds=30)
    return Controller(slots(arm), queue, store, settings, lambda: INPUTS, clock), queue, store


def test_starts_what_the_backlog_needs_then_deallocates_after_the_grace(arm: ArmEmulator, tmp_path: Path) -> None:
    clock = FakeClock()
    ctl, queue, store = controller(arm, tmp_path, clock)
    assert ctl.once()["desired"] == 0  # nothing queued, nothing started
    for _ in range(1500):  # 1,500 × 30 s of audio at 10× real time: 4,500 GPU-s due within the hour
        queue.send("segment")
    entry = ctl.once()
    started = [a["slot"] for a in entry["actions"] if a["action"] == "start" and a["ok"]]
    assert entry["desired"] == len(started)
    assert len(started) >= 1
    assert "scale up" in entry["reason"]
    assert all(arm.state.power[s] == "running" for s in started)
    for message in queue.receive(32, 30):
        queue.delete(message)
    while queue.approximate_count():
        for message in queue.receive(32, 30):
            queue.delete(message)
    clock.now += 60
    assert ctl.once()["reason"].startswith("idle, within the grace")
    clock.now += 200
    entry = ctl.once()
    assert entry["desired"] == 0 and {a["slot"] for a in entry["actions"]} == set(started)
    assert all(arm.state.power[s] == "deallocated" for s in started)
    audit = read_audit(store)
    assert len(audit) == 4 and all(e.reason for e in audit)
    assert json.loads(store.get(ROUTING_KEY))["routing"] == "self-host"
    # The power history: every slot as first seen, each start, each deallocation — and the paid time
    # it gives is the 260 s the started slots were allocated, nothing for the ones never started.
    history = read_power(store)
    assert [(e.state, e.by) for e in history if e.slot == started[0]] == [
        ("deallocated", "observed"), ("starting", "controller"), ("running", "observed"), ("deallocated", "controller")]
    paid = paid_time(history, audit, 0, clock.now + 1000)
    assert paid is not None and paid.by_slot == {**{s: 0.0 for s in arm.state.power}, **{s: 260.0 for s in started}}


def test_failed_start_falls_back_to_the_next_slot(arm: ArmEmulator, tmp_path: Path) -> None:
    clock = FakeClock()
    ctl, queue, _ = controller(arm, tmp_path, clock)
    arm.state.sync_failures["slot-1"] = (409, "SkuNotAvailable")
    for _ in range(1500):
        queue.send("segment")
    entry = ctl.once()
    starts = [(a["slot"], a["ok"]) for a in entry["actions"] if a["action"] == "start"]
    assert starts[0] == ("slot-1", False) and ("slot-2", True) in starts
    assert arm.state.power["slot-1"] == "deallocated" and arm.state.power["slot-2"] == "running"
    arm.state.power["slot-3"] = "deallocated"  # evicted meanwhile: the fleet is one short again
    again = ctl.once()
    assert "slot-1" not in again["observed"]["available"]  # slot-1 sits out its back-off
    assert arm.state.calls.count(("start", "slot-1")) == 1 and arm.state.power["slot-3"] == "running"


class CountedWorkers(ApiWorkers):
    """API workers that only count: what the controller asked for."""

    def __init__(self) -> None:
        self.count = 0

    def running(self) -> int:
        return self.count

    def scale(self, count: int) -> list[dict[str, Any]]:
        self.count = count
        return [{"action": "scale-api-workers", "workers": count}]


def test_no_capacity_anywhere_routes_to_the_api(arm: ArmEmulator, tmp_path: Path) -> None:
    """Every slot fails to allocate: the work moves to the API queue and API workers start for it."""
    clock = FakeClock()
    ctl, queue, store = controller(arm, tmp_path, clock)
    api_queue, workers = SqliteQueue(tmp_path / "q.db", "work-api", clock=clock), CountedWorkers()
    ctl.api = ApiPath(api_queue, workers, max_workers=3)
    for name in SLOTS:
        arm.state.async_failures[name] = "OverconstrainedAllocationRequest"
    for _ in range(1500):
        queue.send("segment")
    entry = ctl.once()
    assert entry["routing"] == "api"
    assert [a["action"] for a in entry["actions"]][-3:] == ["fallback-to-api", "route-to-api", "scale-api-workers"]
    assert json.loads(store.get(ROUTING_KEY))["routing"] == "api"
    assert queue.approximate_count() == 0 and api_queue.approximate_count() == 1500  # moved, not bounced
    assert workers.count == 3 and entry["observed"]["api_queue_depth"] == 1500


def test_without_an_api_path_nothing_is_routed_there(arm: ArmEmulator, tmp_path: Path) -> None:
    clock = FakeClock()
    ctl, queue, _ = controller(arm, tmp_path, clock)
    for name in SLOTS:
        arm.state.async_failures[name] = "OverconstrainedAllocationRequest"
    for _ in range(1500):
        queue.send("segment")
    entry = ctl.once()
    assert entry["routing"] == "self-host" and queue.approximate_count() == 1500
    assert "fallback-to-api" not in [a["action"] for a in entry["actions"]]


def test_a_spent_budget_stops_routing_and_alerts_once(arm: ArmEmulator, tmp_path: Path) -> None:
    """$1 a month, and the month's API records already cost more: nothing is routed, one alert."""
    from policies.budget import Budget
    from runtime.records import UsageRecord, day_of, dump, usage_key

    clock = FakeClock()
    ctl, queue, store = controller(arm, tmp_path, clock)
    ctl.api = ApiPath(SqliteQueue(tmp_path / "q.db", "work-api", clock=clock), CountedWorkers())
    ctl.budget = Budget(1.0)
    alerts: list[str] = []
    ctl.alerter.notify = lambda event, text, payload: alerts.append(text)  # type: ignore[method-assign]
    spent = UsageRecord("api-1", "j", "s", "transcribe", 20 * 60.0, 0, 0, "openai", "whisper-1", clock.now,
                        clock.now, "done", path="api")  # 20 minutes at $0.006: $0.12 ...
    store.put(usage_key(day_of(clock.now), "api-1", 1, "x"),
              b"".join(dump(spent) + b"\n" for _ in range(10)))  # ... ten times: $1.20
    for name in SLOTS:
        arm.state.async_failures[name] = "OverconstrainedAllocationRequest"
    for _ in range(1500):
        queue.send("segment")
    first, second = ctl.once(), ctl.once()
    assert first["budget"]["level"] == "100%" and not first["budget"]["routing_allowed"]
    assert first["routing"] == second["routing"] == "self-host" and queue.approximate_count() == 1500
    assert len(alerts) == 1 and "100%" in alerts[0] and "no more work is routed" in alerts[0]


def test_no_flapping_within_the_cooldown(arm: ArmEmulator, tmp_path: Path) -> None:
    clock = FakeClock()
    ctl, _, _ = controller(arm, tmp_path, clock)
    ctl.settings = replace(ctl.settings, scaling=replace(ctl.settings.scaling, cooldown_seconds=600))
    desired = []
    for minute in range(10):  # the backlog swings between ~3 GPUs' and ~1.2 GPUs' worth every minute
        ctl.queue = DepthOnly(3000 if minute % 2 == 0 else 1300)  # type: ignore[assignment]
        desired.append(ctl.once()["desired"])
        clock.now += 60
    changes = sum(1 for a, b in itertools.pairwise(desired) if b < a)
    assert changes == 0, desired  # demand wobbles, the fleet does not shrink inside the cooldown


def test_local_mode_starts_and_stops_local_agents(tmp_path: Path) -> None:
    from runtime.config import load_settings
    from runtime.fleet.local_fleet import Fleet
    from runtime.fleet.supervisor import state_path

    settings = load_settings(env={}, home=tmp_path / "home", transcriber="simulated")
    fleet = Fleet(settings, ["local-1", "local-2"]).up()
    state_path(settings.home).write_text(json.dumps({"pid": 0, "url": fleet.server.url, "nodes": list(fleet.nodes)}))
    try:
        from spotkit.controller.local_slots import LocalSlots

        clock = FakeClock()
        params = ScalingParams(max_slots=2, boot_seconds=180, spot_price_per_hour=0.0627, evictions_per_hour=0.05)
        ctl = Controller(LocalSlots(settings.home), DepthOnly(0), FileStore(tmp_path / "store"),  # type: ignore[arg-type]
                         ControllerSettings(scaling=params, deadline_seconds=3600), lambda: INPUTS, clock)
        assert ctl.once()["desired"] == 2  # both running, queue empty: idle within the grace
        clock.now += 200
        entry = ctl.once()
        assert entry["desired"] == 0 and len(entry["actions"]) == 2
        assert {n.state for n in fleet.nodes.values()} == {"stopped"}
        ctl.queue = DepthOnly(3000)  # type: ignore[assignment]
        entry = ctl.once()
        assert entry["desired"] >= 1, entry
        assert fleet.nodes["local-1"].state == "running", (entry, fleet.status())
    finally:
        fleet.down()


def test_a_size_without_capacity_falls_to_the_next_size_then_to_the_api(tmp_path: Path) -> None:
    """Two NC4as slots and two NC8as fallback slots. NC4as has no capacity: one failed start marks the
    size, its second slot is not tried, NC8as starts. When NC8as fails too, the rest goes to the API.
    The audit record shows the sequence."""
    names = {"slot-1": "Standard_NC4as_T4_v3", "slot-2": "Standard_NC4as_T4_v3",
             "nc8as-1": "Standard_NC8as_T4_v3", "nc8as-2": "Standard_NC8as_T4_v3"}
    emulator = ArmEmulator({name: "deallocated" for name in names})
    try:
        backend = AzureSlots(SUB, RG, list(names), credential=NoCredential(), sizes=names, base_url=emulator.url,
                             authentication_policy=SansIOHTTPPolicy(), polling_interval=0)
        clock = FakeClock()
        queue, store = SqliteQueue(tmp_path / "q.db", clock=clock), FileStore(tmp_path / "store")
        params = ScalingParams(max_slots=4, boot_seconds=180, spot_price_per_hour=0.0627, evictions_per_hour=0.05)
        ctl = Controller(backend, queue, store, ControllerSettings(scaling=params, deadline_seconds=3600,
                                                                   segment_seconds=30), lambda: INPUTS, clock)
        ctl.api = ApiPath(SqliteQueue(tmp_path / "q.db", "work-api", clock=clock), CountedWorkers())
        emulator.state.sync_failures["slot-1"] = (409, "SkuNotAvailable")
        emulator.state.sync_failures["nc8as-2"] = (409, "OverconstrainedAllocationRequest")
        for _ in range(3000):
            queue.send("segment")
        entry = ctl.once()
        sequence = [f"start {a['slot']} {'ok' if a['ok'] else a['code']}" if a["action"] == "start" else a["action"]
                    for a in entry["actions"]]
        assert sequence[:5] == ["start slot-1 SkuNotAvailable", "start nc8as-1 ok",
                                "start nc8as-2 OverconstrainedAllocationRequest", "fallback-to-api", "route-to-api"]
        assert ("start", "slot-2") not in emulator.state.calls  # the same size is not tried again
        assert entry["routing"] == "split" and ctl.api is not None and ctl.api.queue.approximate_count() > 0
        clock.now += 60  # within the back-off: neither failed size is tried again
        assert not [a for a in ctl.once()["actions"] if a["action"] == "start"]
    finally:
        emulator.stop()


def test_each_submission_is_planned_against_its_own_deadline(arm: ArmEmulator, tmp_path: Path) -> None:
    """A low-priority archive due in three days and an urgent job due before any slot could boot: the
    urgent job's messages go to the API, the archive waits for the fleet (split), and the audit record
    shows the earliest deadline."""
    from runtime.records import BacklogRecord, backlog_key

    clock = FakeClock()
    ctl, queue, store = controller(arm, tmp_path, clock)
    api_queue = SqliteQueue(tmp_path / "q.db", "work-api", clock=clock)
    ctl.api = ApiPath(api_queue, CountedWorkers())
    archive = BacklogRecord("a" * 24, clock.now - 60, clock.now + 3 * 86400, "low", 100, 2500.0)
    urgent = BacklogRecord("b" * 24, clock.now, clock.now + 120, "high", 20, 500.0)
    store.put(backlog_key(archive.job, int(archive.submitted_at * 1000)), dump(archive))
    store.put(backlog_key(urgent.job, int(urgent.submitted_at * 1000)), dump(urgent))
    for _ in range(120):
        queue.send("segment")
    entry = ctl.once()
    assert entry["routing"] == "split", entry
    assert [a["messages"] for a in entry["actions"] if a["action"] == "route-to-api"] == [20]
    assert api_queue.approximate_count() == 20 and queue.approximate_count() == 100
    assert entry["observed"]["earliest_deadline"] == urgent.deadline_at


def test_a_finished_submission_leaves_the_backlog(arm: ArmEmulator, tmp_path: Path) -> None:
    from runtime.records import BACKLOG, BacklogRecord, backlog_key

    clock = FakeClock()
    ctl, _, store = controller(arm, tmp_path, clock)
    done = BacklogRecord("c" * 24, clock.now - 7200, clock.now - 3600, "normal", 5, 100.0)
    store.put(backlog_key(done.job, int(done.submitted_at * 1000)), dump(done))
    ctl.once()  # an empty queue: nothing of it is left
    assert list(store.list(BACKLOG)) == []


def test_a_stopped_controller_stops_its_api_workers(arm: ArmEmulator, tmp_path: Path) -> None:
    import threading

    clock = FakeClock()
    ctl, _, _ = controller(arm, tmp_path, clock)
    workers = CountedWorkers()
    workers.count = 2
    ctl.api = ApiPath(SqliteQueue(tmp_path / "q.db", "work-api", clock=clock), workers)
    stop = threading.Event()
    stop.set()
    ctl.run(0.01, stop)
    assert workers.count == 0


def test_while_the_primary_size_has_no_capacity_a_gpu_is_priced_as_the_fallback_size(tmp_path: Path) -> None:
    """The break-even is computed at the price of the slot that would start: once NC4as has no capacity
    the next GPU is an NC8as, at its own (higher) price from the price source — and when the source has
    no price for it, at the primary price, which the audit calls a lower bound."""
    from policies.prices import PriceNotFound, VmPrices, load_vm_prices
    from spotkit.controller.measure import InputReader

    known = {"Standard_NC8as_T4_v3": VmPrices(0.752, 0.0902, "USD", "2026-11-28", "a price source that has it")}

    def prices(size: str, region: str, network: bool) -> VmPrices:
        if size in known:
            return known[size]
        return load_vm_prices(size, region, allow_network=network)  # the snapshot: NC4as in eastus only

    names = {"slot-1": "Standard_NC4as_T4_v3", "nc8as-1": "Standard_NC8as_T4_v3", "nc8as-2": "Standard_NC8as_T4_v3"}
    emulator = ArmEmulator({name: "deallocated" for name in names})
    try:
        backend = AzureSlots(SUB, RG, list(names), credential=NoCredential(), sizes=names, base_url=emulator.url,
                             authentication_policy=SansIOHTTPPolicy(), polling_interval=0)
        clock = FakeClock()
        queue, store = SqliteQueue(tmp_path / "q.db", clock=clock), FileStore(tmp_path / "store")
        reader = InputReader(store, "Standard_NC4as_T4_v3", "eastus", live_prices=False, clock=clock,
                             price_ttl_seconds=0, vm_prices=prices)
        params = ScalingParams(max_slots=3, boot_seconds=0, spot_price_per_hour=0, evictions_per_hour=0)
        ctl = Controller(backend, queue, store, ControllerSettings(scaling=params, deadline_seconds=1800,
                                                                   segment_seconds=30), reader.read, clock,
                         size_price=reader.spot_price_of)
        emulator.state.sync_failures["slot-1"] = (409, "SkuNotAvailable")
        for _ in range(3000):  # 1,800 GPU-s at the prior 50x, due in 30 min: two GPUs
            queue.send("segment")
        first = ctl.once()
        assert first["inputs"]["spot_price_per_hour"]["value"] == 0.0627  # decided before NC4as failed
        assert [(a["slot"], a["ok"]) for a in first["actions"] if a["action"] == "start"][:2] == \
            [("slot-1", False), ("nc8as-1", True)]
        ctl.slots.deallocate("nc8as-1")
        clock.now += 60  # NC4as sits out its back-off: the next GPU would be an NC8as
        priced = ctl.once()["inputs"]["spot_price_per_hour"]
        assert priced["value"] == 0.0902 and "Standard_NC8as_T4_v3" in priced["detail"], priced
        with pytest.raises(PriceNotFound):
            load_vm_prices("Standard_NC8as_T4_v3", "eastus", allow_network=False)
        known.clear()  # a price source with no price for the fallback size
        ctl.slots.deallocate("nc8as-1")
        clock.now += 60
        bound = ctl.once()["inputs"]["spot_price_per_hour"]
        assert bound["value"] == 0.0627 and "a lower bound" in bound["detail"], bound
    finally:
        emulator.stop()


def test_each_day_opens_with_every_slot_s_state_so_a_window_reads_only_its_days(arm: ArmEmulator,
                                                                                tmp_path: Path) -> None:
    """A slot kept running for days without a change (minRunning): the controller records its state again
    on each new UTC day, so the eviction-rate window (and the month's report) reads only its own days'
    partitions plus the day before — and still bills the slot from the window's start."""
    from dataclasses import replace

    from runtime.records import read_power_span

    clock = FakeClock()
    ctl, _, store = controller(arm, tmp_path, clock)
    ctl.settings = replace(ctl.settings, scaling=replace(ctl.settings.scaling, min_running=1))
    arm.state.power["slot-1"] = "running"
    ctl.once()
    clock.now += 60
    ctl.once()  # the same day, nothing changed: nothing written
    assert [(e.state, e.by) for e in read_power(store) if e.slot == "slot-1"] == [("running", "observed")]
    for _ in range(12):  # three days of rounds, six hours apart
        clock.now += 6 * 3600
        ctl.once()
    days = {day_of(e.at) for e in read_power(store) if e.slot == "slot-1"}
    assert len(days) == 4 and {e.state for e in read_power(store) if e.slot == "slot-1"} == {"running"}
    start = clock.now - 3600
    span = read_power_span(store, start, clock.now)
    assert len(span) < len(read_power(store))  # the older days' partitions are not read
    paid = paid_time(span, [], start, clock.now)
    assert paid is not None and paid.by_slot["slot-1"] == 3600
