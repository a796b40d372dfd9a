"""The drain sequence end to end, with a real agent process (tiny.en on CPU) and the local metadata
service: a Preempt with two minutes of notice while a batch is in the engine must end in this order —
final heartbeat ``drained``, eviction record, alert, acknowledgement — and only then the process
exits 0. The same when SIGTERM arrives during that drain, and a drained node stays ``drained`` on
the on-call view until it stops."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from runtime.config import Settings, load_settings
from runtime.fleet.chaos import media_variants
from runtime.fleet.metadata_server import MetadataServer
from runtime.jobs import submit
from runtime.local_agents import start_agent
from runtime.oncall import list_nodes
from runtime.queue import open_queue
from runtime.records import EVICTIONS, EvictionRecord, read_evictions, read_heartbeats
from runtime.store import open_store
from runtime.store.base import ObjectStore
from runtime.work import TaskOptions
from tests.runtime.test_agent_processes import wait_for

NODE = "spot-1"


@dataclass
class Webhook:
    """Receives eviction alerts and notes what the store held at that moment."""

    store: ObjectStore
    alerts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any] | None:
        if path != "hook":
            return None
        beats = {b.node: b.state for b in read_heartbeats(self.store)}
        with self.lock:
            self.alerts.append({"at": time.time(), "body": body, "records": len(self.store.list(EVICTIONS)),
                                "heartbeat": beats.get(NODE)})
        return 200, {}


@pytest.fixture
def imds() -> Iterator[MetadataServer]:
    server = MetadataServer(default_vm=NODE).start()
    yield server
    server.stop()


def node_settings(home: Path, imds: MetadataServer, hook: MetadataServer) -> Settings:
    # One batch of four real segments on one thread: it is in the engine for seconds (tens of seconds on a
    # loaded CI machine), the notice is two minutes — the drain waits for the batch, never for the notice.
    return load_settings(env={}, home=home, node_name=NODE, scheduled_events="on",
                         imds_endpoint=imds.vm_endpoint(NODE), imds_poll_seconds=0.2, heartbeat_seconds=0.3,
                         batch_size=4, cpu_threads=1, lease_seconds=120, alert_webhook=f"{hook.url}/admin/hook")


def submit_work(settings: Settings, tmp_path: Path) -> None:
    queue, store = open_queue(settings.queue), open_store(settings.store)
    queue.ensure()
    store.ensure()
    for media in media_variants(tmp_path, 4):
        submit(media, queue, store, TaskOptions(), settings.segment_max_seconds)


def in_engine(store: ObjectStore) -> bool:
    return any(b.node == NODE and b.state == "working" and len(b.in_flight) >= 2 for b in read_heartbeats(store))


def heartbeat_state(store: ObjectStore) -> str | None:
    return next((b.state for b in read_heartbeats(store) if b.node == NODE), None)


@pytest.mark.parametrize("how", ["exit-when-drained", "sigterm-during-drain", "drained-until-stopped"])
def test_preempt_drain_sequence_then_exit(tmp_path: Path, imds: MetadataServer, how: str) -> None:
    store = open_store(load_settings(env={}, home=tmp_path / "home").store)
    webhook = Webhook(store)
    hook = MetadataServer(extra=webhook).start()
    try:
        settings = node_settings(tmp_path / "home", imds, hook)
        submit_work(settings, tmp_path)
        agent = start_agent(settings, NODE, *(["--exit-when-drained"] if how == "exit-when-drained" else []))
        log = settings.home / "logs" / f"{NODE}.log"
        wait_for(lambda: in_engine(store), 120, "a batch in the engine")
        event = imds.state.add_event("Preempt", [NODE], notice_seconds=120)
        if how == "sigterm-during-drain":
            wait_for(lambda: heartbeat_state(store) == "draining", 10, "the drain to begin")
            agent.send_signal(signal.SIGTERM)  # a first SIGTERM waits for the sequence; it does not cut it
        if how == "drained-until-stopped":
            wait_for(lambda: event.acknowledged_at is not None, 150, "the acknowledgement")
            time.sleep(1.0)  # several heartbeats later the node still says so
            assert [n["state"] for n in list_nodes(store) if n["node"] == NODE] == ["drained"]
            assert agent.poll() is None  # stays drained, serving metrics, until told to stop
            agent.send_signal(signal.SIGTERM)
        assert agent.wait(150) == 0, log.read_text()
        exited = time.time()
    finally:
        hook.stop()

    [record] = read_evictions(store)
    assert isinstance(record, EvictionRecord) and record.event_id == event.event_id
    assert record.finished >= 2 and record.requeued == 0  # the batch fitted in the notice: it finished
    assert record.will_acknowledge and record.acknowledged_at is not None
    [alert] = webhook.alerts
    assert alert["heartbeat"] == "drained"  # the final heartbeat was written before the record and the alert
    assert alert["records"] == 1  # the record was in the store when the alert arrived
    assert event.acknowledged_at is not None  # StartRequests received: the process was still alive
    assert record.drained_at <= alert["at"] <= event.acknowledged_at <= exited
    assert heartbeat_state(store) == "stopped"
