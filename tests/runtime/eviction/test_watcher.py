"""The watcher against the local metadata service, driving a fake node (reactions, records, acks)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from runtime.eviction.alerts import Alerter
from runtime.eviction.decision import DrainPolicy, NodeTotals, NodeView
from runtime.eviction.imds import ImdsClient, ImdsError
from runtime.eviction.sources import (
    DrainRequestSource,
    ScheduledEventsSource,
    SignalSource,
)
from runtime.eviction.watcher import Watcher
from runtime.fleet.metadata_server import MetadataServer
from runtime.fleet.metadata_state import Fault
from runtime.records import EVICTIONS, EvictionRecord, drain_request_key, load, read_power
from runtime.store.file_store import FileStore
from tests.runtime.eviction.conftest import Webhook
from tests.support.azurite import free_port


class FakeNode:
    """Implements the watcher's `Drainable` protocol with counters instead of a queue, and logs the
    drain steps it is asked to run, in order."""

    def __init__(self, leased: int = 3, batch: int = 0, predicted: float = 0.0) -> None:
        self.draining = False
        self.leased = leased
        self.batch = batch
        self.batch_started: float | None = time.time() - 0.5 if batch else None
        self.predicted = predicted
        self.finished = 0
        self.requeued = 0
        self.wasted = 0.0
        self.flushes = 0
        self.held: float | None = None
        self.resumed = 0
        self.drained_when_flushed: list[bool] = []
        self.steps: list[str] = []
        self.exit_by: float | None = None

    def view(self, now: float, drained_for: str | None) -> NodeView:
        return NodeView(now, self.batch_started, self.predicted, drained_for)

    def begin_drain(self, reason: str, exit_by: float) -> int:
        self.draining, requeued, self.leased = True, self.leased, 0
        self.requeued += requeued
        self.exit_by = exit_by
        self.steps.append("begin")
        return requeued

    def abandon_batch(self, now: float) -> tuple[int, float]:
        if self.batch_started is None:
            return 0, 0.0
        requeued, wasted = self.batch, now - self.batch_started
        self.batch, self.batch_started = 0, None
        self.requeued += requeued
        self.wasted += wasted
        self.steps.append("abandon")
        return requeued, wasted

    def finish_batch(self) -> None:
        self.finished += self.batch
        self.batch, self.batch_started = 0, None

    def is_settled(self) -> bool:
        return self.draining and self.batch_started is None and self.leased == 0

    def totals(self) -> NodeTotals:
        return NodeTotals(self.finished, self.requeued, self.wasted)

    def flush_usage(self) -> None:
        self.flushes += 1
        self.drained_when_flushed.append(self.is_settled())
        self.steps.append("flush")

    def mark_drained(self) -> None:
        self.steps.append("drained-heartbeat")

    def release(self) -> None:
        self.steps.append("release")

    def hold(self, until: float | None) -> None:
        self.held = until

    def resume(self) -> None:
        self.draining = False
        self.resumed += 1


def make_watcher(imds: MetadataServer, node: FakeNode, tmp_path: Path, vm: str = "spot-1",
                 endpoint: str | None = None) -> tuple[Watcher, FileStore]:
    store = FileStore(tmp_path / "store")
    client = ImdsClient(endpoint or imds.vm_endpoint(vm), timeout=0.5)
    source = ScheduledEventsSource(client, vm, interval=0.0, first_timeout=0.5)
    watcher = Watcher(vm, [source], node, store, DrainPolicy(safety_margin_seconds=1.0), Alerter(),
                      time.time, acknowledge=client.acknowledge)
    return watcher, store


def test_empty_document_keeps_running(imds: MetadataServer, tmp_path: Path) -> None:
    node = FakeNode()
    watcher, _ = make_watcher(imds, node, tmp_path)
    assert watcher.step().action == "run"
    assert not node.draining


def test_preempt_drains_records_then_acknowledges(imds: MetadataServer, tmp_path: Path) -> None:
    event = imds.state.add_event("Preempt", ["spot-1"], notice_seconds=30)
    node = FakeNode(leased=3, batch=2, predicted=2.0)  # the batch ends in 1.5 s: it fits
    watcher, store = make_watcher(imds, node, tmp_path)
    reaction = watcher.step()
    assert reaction.action == "drain" and reaction.finish_in_flight
    assert node.draining and node.batch == 2  # still running, not abandoned
    assert event.acknowledged_at is None  # not before the drain finished
    node.finish_batch()
    watcher.step()
    [record] = watcher.records
    assert event.acknowledged_at is not None and event.acknowledged_by == "spot-1"
    assert record.acknowledged_at is not None and record.acknowledged_at >= record.drained_at
    assert (record.event_id, record.requeued, record.finished) == (event.event_id, 3, 2)
    assert 28 <= record.notice_seconds <= 31
    assert node.drained_when_flushed == [True]
    stored = load(EvictionRecord, store.get(record.key()))
    assert stored == record and stored.event_type == "Preempt" and stored.node == "spot-1"
    # Paid time ends with the eviction: the slot's power history says so, before the approval.
    [evicted] = read_power(store)
    assert (evicted.slot, evicted.state, evicted.by) == ("spot-1", "evicted", "watcher")
    assert record.seen_at <= evicted.at <= record.acknowledged_at and event.event_id in evicted.detail
    watcher.step()
    assert len(watcher.records) == 1  # one record per event, however long it stays


class LoggingStore(FileStore):
    def __init__(self, root: Path, steps: list[str]) -> None:
        super().__init__(root)
        self.steps = steps

    def put(self, key: str, data: bytes) -> None:
        super().put(key, data)
        if key.startswith(EVICTIONS):
            self.steps.append("record")


class LoggingAlerter(Alerter):
    def __init__(self, steps: list[str]) -> None:
        super().__init__()
        self.steps = steps

    def eviction(self, record: dict[str, Any]) -> None:
        self.steps.append("alert")
        super().eviction(record)


def test_the_drain_sequence_runs_in_its_one_order(imds: MetadataServer, tmp_path: Path) -> None:
    """requeue/abandon → flush usage → drained heartbeat → record → alert → acknowledge → release."""
    imds.state.add_event("Preempt", ["spot-1"], notice_seconds=2)
    node = FakeNode(leased=2, batch=3, predicted=10.0)  # cannot finish: abandoned
    client = ImdsClient(imds.vm_endpoint("spot-1"), timeout=0.5)

    def acknowledge(ids: list[str]) -> None:
        node.steps.append("ack")
        client.acknowledge(ids)

    watcher = Watcher("spot-1", [ScheduledEventsSource(client, "spot-1", interval=0.0, first_timeout=0.5)], node,
                      LoggingStore(tmp_path / "store", node.steps), DrainPolicy(safety_margin_seconds=1.0),
                      LoggingAlerter(node.steps), time.time, acknowledge=acknowledge)
    reaction = watcher.step()
    assert reaction.abandon_running and reaction.exit_by == reaction.deadline + 1.0  # type: ignore[operator]
    assert node.exit_by == reaction.exit_by
    assert node.steps == ["begin", "abandon", "flush", "drained-heartbeat", "record", "alert", "ack", "record",
                          "release"]


def test_short_notice_abandons_the_running_batch(imds: MetadataServer, tmp_path: Path) -> None:
    imds.state.add_event("Preempt", ["spot-1"], notice_seconds=2)
    node = FakeNode(leased=1, batch=4, predicted=10.0)
    watcher, _ = make_watcher(imds, node, tmp_path)
    reaction = watcher.step()
    assert not reaction.finish_in_flight
    [record] = watcher.records
    assert record.requeued == 5 and record.finished == 0
    assert record.wasted_gpu_seconds >= 0.5  # the abandoned batch had run for 0.5 s


def test_events_for_other_vms_only_are_ignored(imds: MetadataServer, tmp_path: Path) -> None:
    imds.state.add_event("Preempt", ["spot-2"], notice_seconds=30, visible_to=["spot-1", "spot-2"])
    imds.state.add_event("Reboot", ["gpu-pool_4"], notice_seconds=600, visible_to=["spot-1"])
    node = FakeNode()
    watcher, _ = make_watcher(imds, node, tmp_path)
    assert watcher.step().action == "run" and not node.draining


def test_freeze_scheduled_then_started_then_gone(imds: MetadataServer, tmp_path: Path) -> None:
    freeze = imds.state.add_event("Freeze", ["spot-1"], notice_seconds=60, duration_seconds=5)
    node = FakeNode()
    watcher, _ = make_watcher(imds, node, tmp_path)
    reaction = watcher.step()
    assert reaction.action == "hold" and node.held == pytest.approx(freeze.not_before - 1, abs=1.5)
    assert not node.draining
    imds.state.acknowledge("spot-1", [freeze.event_id])  # now Started
    assert watcher.step().action == "hold" and node.held is not None and node.held <= time.time()
    imds.state.end_event(freeze.event_id, "completed")
    assert watcher.step().action == "run" and node.held is None


def test_cancelled_preempt_resumes(imds: MetadataServer, tmp_path: Path) -> None:
    event = imds.state.add_event("Preempt", ["spot-1"], notice_seconds=30)
    node = FakeNode(leased=0)
    watcher, _ = make_watcher(imds, node, tmp_path)
    watcher.step()
    assert node.draining and watcher.drained
    imds.state.end_event(event.event_id, "cancelled")
    assert watcher.step().action == "resume"
    assert not node.draining and node.resumed == 1 and not watcher.drained


@pytest.mark.parametrize("fault", [Fault("garbage"), Fault("status", status=500),
                                   Fault("raw", body="null"), Fault("delay", seconds=1.0)])
def test_bad_replies_are_survived(imds: MetadataServer, tmp_path: Path, fault: Fault) -> None:
    node = FakeNode()
    watcher, _ = make_watcher(imds, node, tmp_path)
    imds.state.add_fault("spot-1", Fault(fault.mode, 3, fault.status, fault.seconds, fault.body))
    for _ in range(3):
        assert watcher.step().action == "run"
    source = watcher.sources[0]
    assert isinstance(source, ScheduledEventsSource) and source.failures == 3
    event = imds.state.add_event("Preempt", ["spot-1"], notice_seconds=30)
    watcher.step()
    assert node.draining and watcher.records[0].event_id == event.event_id


def test_bad_replies_do_not_cancel_a_known_event(imds: MetadataServer, tmp_path: Path) -> None:
    imds.state.add_event("Preempt", ["spot-1"], notice_seconds=30)
    node = FakeNode(leased=0)
    watcher, _ = make_watcher(imds, node, tmp_path)
    watcher.step()
    imds.state.add_fault("spot-1", Fault("status", 2, 503))
    assert [watcher.step().action, watcher.step().action] == ["drain", "drain"]
    assert node.resumed == 0


def test_unreachable_endpoint_keeps_polling(imds: MetadataServer, tmp_path: Path) -> None:
    node = FakeNode()
    watcher, _ = make_watcher(imds, node, tmp_path, endpoint=f"http://127.0.0.1:{free_port()}")
    assert [watcher.step().action for _ in range(3)] == ["run"] * 3
    source = watcher.sources[0]
    assert isinstance(source, ScheduledEventsSource) and source.failures == 3


def test_vm_name_from_instance_metadata(imds: MetadataServer, tmp_path: Path) -> None:
    imds.state.add_event("Preempt", ["spot-9"], notice_seconds=30)
    node = FakeNode()
    store = FileStore(tmp_path)
    source = ScheduledEventsSource(ImdsClient(imds.vm_endpoint("spot-9")), vm_name="", interval=0)
    Watcher("n", [source], node, store, DrainPolicy(), Alerter(), time.time).step()
    assert source.vm_name == "spot-9" and node.draining


def test_sigterm_and_drain_request_sources(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    signals = SignalSource(grace_seconds=20)
    node = FakeNode(leased=2)
    watcher = Watcher("n1", [signals, DrainRequestSource(store, "n1", interval=0)], node, store,
                      DrainPolicy(safety_margin_seconds=1), Alerter(), time.time)
    assert watcher.step().action == "run"
    store.put(drain_request_key("n1"), json.dumps({"id": "drain-1", "requested_at": time.time(),
                                                    "deadline_seconds": 60}).encode())
    reaction = watcher.step()
    assert reaction.action == "drain" and not reaction.acknowledge
    store.delete(drain_request_key("n1"))
    assert watcher.step().action == "resume"
    signals.trigger(time.time())
    reaction = watcher.step()
    assert reaction.action == "drain" and reaction.event is not None
    assert reaction.event.event_type == "Sigterm"
    assert reaction.deadline == pytest.approx(time.time() + 19, abs=1)


def test_operator_drains_and_stops_are_recorded_not_paged(imds: MetadataServer, tmp_path: Path,
                                                          webhook: Webhook) -> None:
    """Only the cloud's events page on-call: an operator's drain and a SIGTERM leave an eviction
    record each and post nothing, while a Preempt on the same node posts exactly one alert."""
    store = FileStore(tmp_path / "store")
    alerter = Alerter(webhook.url)
    signals = SignalSource(grace_seconds=20)
    for source in (DrainRequestSource(store, "n1", interval=0), signals):
        watcher = Watcher("n1", [source], FakeNode(leased=1), store, DrainPolicy(safety_margin_seconds=1),
                          alerter, time.time)
        if source is signals:
            signals.trigger(time.time())
        else:
            store.put(drain_request_key("n1"), json.dumps(
                {"id": "drain-op", "requested_at": time.time(), "deadline_seconds": 60}).encode())
        reaction = watcher.step()
        assert reaction.action == "drain" and not reaction.page
        alerter.wait()
    origins = sorted(load(EvictionRecord, store.get(k)).origin for k in store.list(EVICTIONS))
    assert origins == ["drain-request", "signal"] and webhook.received == []
    assert read_power(store) == []  # the VM stays allocated: paid time goes on
    imds.state.add_event("Preempt", ["spot-1"], notice_seconds=30)
    watcher, _ = make_watcher(imds, FakeNode(leased=1), tmp_path)
    watcher.alerter = alerter
    assert watcher.step().page
    watcher.step()
    alerter.wait()
    assert [a["event_type"] for a in webhook.received] == ["Preempt"]


def test_webhook_alert_posted_without_blocking(imds: MetadataServer, tmp_path: Path, webhook: Webhook) -> None:
    imds.state.add_event("Preempt", ["spot-1"], notice_seconds=30)
    node = FakeNode(leased=1)
    watcher, _ = make_watcher(imds, node, tmp_path)
    watcher.alerter = Alerter(webhook.url, runbook_base_url="https://runbook.example/ops/")
    watcher.step()
    watcher.alerter.wait()
    [alert] = webhook.received
    assert alert["node"] == "spot-1" and alert["requeued"] == 1
    assert alert["runbook"] == "https://runbook.example/ops/eviction.md"
    assert "spot-1" in str(alert["text"]) and "Preempt" in str(alert["text"])


def test_unreachable_webhook_retries_and_gives_up(imds: MetadataServer, tmp_path: Path) -> None:
    imds.state.add_event("Preempt", ["spot-1"], notice_seconds=30)
    node = FakeNode(leased=0)
    watcher, _ = make_watcher(imds, node, tmp_path)
    watcher.alerter = Alerter(f"http://127.0.0.1:{free_port()}/hook", attempts=2, backoff_seconds=0.01,
                              timeout=0.5)
    started = time.monotonic()
    watcher.step()
    assert time.monotonic() - started < 0.5  # the drain did not wait for the webhook
    watcher.alerter.wait()
    assert (watcher.alerter.delivered, watcher.alerter.failed) == (0, 1)


def test_an_event_naming_two_vms_is_acknowledged_only_once_both_drained(imds: MetadataServer, tmp_path: Path) -> None:
    """Acknowledging releases the event for every VM it names: the idle node must not approve it while
    the busy one is still finishing its batch; the last one to drain approves it."""
    event = imds.state.add_event("Preempt", ["spot-1", "spot-2"], notice_seconds=30)
    store = FileStore(tmp_path / "store")
    idle, busy = FakeNode(leased=0), FakeNode(leased=1, batch=2, predicted=2.0)
    watchers = {}
    for vm, node in (("spot-1", idle), ("spot-2", busy)):
        client = ImdsClient(imds.vm_endpoint(vm), timeout=0.5)
        watchers[vm] = Watcher(vm, [ScheduledEventsSource(client, vm, interval=0.0, first_timeout=0.5)], node,
                               store, DrainPolicy(safety_margin_seconds=1.0), Alerter(), time.time,
                               acknowledge=client.acknowledge)
    reaction = watchers["spot-1"].step()
    assert reaction.ack_after == ("spot-2",)
    assert watchers["spot-1"].drained and event.acknowledged_at is None  # drained, but spot-2 is not
    watchers["spot-2"].step()
    assert not watchers["spot-2"].drained and event.acknowledged_at is None  # its batch is still running
    watchers["spot-1"].step()
    assert event.acknowledged_at is None
    busy.finish_batch()
    watchers["spot-2"].step()  # the last to drain approves it for both
    assert event.acknowledged_at is not None and event.acknowledged_by == "spot-2"
    assert all(w.records[0].will_acknowledge for w in watchers.values())
    assert watchers["spot-2"].records[0].acknowledged_at is not None


def test_my_preempt_beside_another_vms_mangled_event_is_seen(imds: MetadataServer, tmp_path: Path) -> None:
    mine = {"EventId": "mine", "EventType": "Preempt", "Resources": ["spot-1"], "EventStatus": "Scheduled",
            "NotBefore": "", "DurationInSeconds": -1}
    theirs = {"EventId": "theirs", "EventType": "Reboot", "Resources": "spot-2", "NotBefore": "soon"}
    body = json.dumps({"DocumentIncarnation": "3a", "Events": [theirs, mine]})
    imds.state.add_fault("spot-1", Fault("raw", count=50, body=body))
    node = FakeNode()
    watcher, _ = make_watcher(imds, node, tmp_path)
    reaction = watcher.step()
    assert reaction.action == "drain" and reaction.event is not None and reaction.event.event_id == "mine"
    source = watcher.sources[0]
    assert isinstance(source, ScheduledEventsSource) and source.skipped >= 2 and source.failures == 0


def test_a_reboot_far_ahead_keeps_the_node_working(imds: MetadataServer, tmp_path: Path) -> None:
    event = imds.state.add_event("Reboot", ["spot-1"], notice_seconds=900)
    node = FakeNode(leased=0, predicted=40.0)
    watcher, _ = make_watcher(imds, node, tmp_path)
    reaction = watcher.step()
    assert reaction.action == "hold" and not node.draining
    assert node.held == pytest.approx(event.not_before - 1.0, abs=1.5)  # no batch straddles the deadline
    watcher.clock = lambda: time.time() + 870  # one batch (40 s) before the deadline
    reaction = watcher.step()
    assert reaction.action == "drain" and reaction.acknowledge and node.draining
    assert event.acknowledged_at is not None  # drained at once: the VM reboots now, not at NotBefore


def test_microsofts_mock_server_quirks(tmp_path: Path) -> None:
    """ISO NotBefore, a new EventId once Started, no instance endpoint, a Freeze Started for minutes."""
    from runtime.fleet.metadata_state import MetadataState

    server = MetadataServer(MetadataState(mock_server_quirks=True), default_vm="spot-1").start()
    try:
        client = ImdsClient(server.vm_endpoint("spot-1"), timeout=0.5)
        with pytest.raises(ImdsError) as missing:
            client.vm_name()
        assert missing.value.status == 404
        source = ScheduledEventsSource(client, vm_name="", interval=0.0, first_timeout=0.5)
        import socket

        freeze = server.state.add_event("Freeze", [socket.gethostname()], notice_seconds=0, started=True,
                                        duration_seconds=1, visible_to=["spot-1"])
        node = FakeNode(leased=0)
        watcher = Watcher("n", [source], node, FileStore(tmp_path / "s"), DrainPolicy(safety_margin_seconds=0.5),
                          Alerter(), time.time, acknowledge=client.acknowledge)
        assert watcher.step().action == "hold" and source.vm_name == socket.gethostname()
        time.sleep(1.7)
        assert watcher.step().action == "run"  # still listed as Started, but its pause is over
        assert freeze.ended_at is None
        server.state.end_event(freeze.event_id, "completed")
        preempt = server.state.add_event("Preempt", [socket.gethostname()], notice_seconds=30,
                                         visible_to=["spot-1"])
        watcher.step()
        assert preempt.acknowledged_at is not None  # approved under its Scheduled id
        doc = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"{server.vm_endpoint('spot-1')}/metadata/scheduledevents?api-version=2020-07-01",
            headers={"Metadata": "true"}), timeout=5).read())
        [started] = doc["Events"]
        assert started["EventStatus"] == "Started" and started["EventId"] != preempt.event_id
        watcher.step()
        assert len(watcher.records) == 1 and node.resumed == 0  # the new id is not a new eviction
    finally:
        server.stop()
