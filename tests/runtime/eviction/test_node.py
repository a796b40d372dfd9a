"""A whole node (agent + watcher) in-process: the metadata service misbehaving never stops the work,
and a Preempt drains the real agent."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.config import Settings, load_settings
from runtime.engines.factory import open_transcriber
from runtime.eviction.sources import ScheduledEventsSource
from runtime.fleet.metadata_server import MetadataServer
from runtime.fleet.metadata_state import Fault
from runtime.jobs import job_status, submit
from runtime.node import Node
from runtime.queue import open_queue
from runtime.records import read_usage
from runtime.store import open_store
from runtime.work import TaskOptions
from tests.conftest import DEMO_SAMPLE
from tests.support.azurite import free_port


def node_settings(tmp_path: Path, endpoint: str) -> Settings:
    return load_settings(env={}, home=tmp_path / "home", node_name="spot-1", transcriber="simulated",
                         simulated_speed=10, segment_max_seconds=3, batch_size=2, idle_seconds=1,
                         scheduled_events="on", imds_endpoint=endpoint, imds_poll_seconds=0.2,
                         safety_margin_seconds=0.2, heartbeat_seconds=0.5, retry_seconds=0)


def make_node(settings: Settings, until_idle: bool = True, exit_when_drained: bool = False) -> tuple[Node, str]:
    queue, store = open_queue(settings.queue), open_store(settings.store)
    queue.ensure()
    store.ensure()
    job = submit(DEMO_SAMPLE, queue, store, TaskOptions(), settings.segment_max_seconds).job
    return Node(settings, queue, store, lambda: open_transcriber(settings), until_idle=until_idle,
                exit_when_drained=exit_when_drained), job


@pytest.mark.parametrize("fault", ["garbage", "500", "unreachable"])
def test_bad_metadata_leaves_the_agent_processing(tmp_path: Path, imds: MetadataServer, fault: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}" if fault == "unreachable" else imds.vm_endpoint("spot-1")
    if fault == "garbage":
        imds.state.add_fault("spot-1", Fault("garbage", count=10_000))
    elif fault == "500":
        imds.state.add_fault("spot-1", Fault("status", count=10_000, status=500))
    settings = node_settings(tmp_path, endpoint)
    node, job = make_node(settings)
    assert node.run() == 0
    assert job_status(node.agent.store, job).complete
    [source] = [s for s in node.watcher.sources if isinstance(s, ScheduledEventsSource)]
    assert source.failures >= 3 and source.failures == source.polls
    assert not node.watcher.records


def test_preempt_drains_the_real_agent_and_acknowledges(tmp_path: Path, imds: MetadataServer) -> None:
    settings = replace(node_settings(tmp_path, imds.vm_endpoint("spot-1")), simulated_speed=2)
    node, job = make_node(settings, until_idle=False, exit_when_drained=True)
    runner = threading.Thread(target=lambda: node.run())
    runner.start()
    deadline = time.monotonic() + 30
    while job_status(node.agent.store, job).done < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    event = imds.state.add_event("Preempt", ["spot-1"], notice_seconds=1.5)
    runner.join(30)
    assert not runner.is_alive()
    [record] = node.watcher.records
    assert record.event_id == event.event_id and record.will_acknowledge
    assert event.acknowledged_at is not None and event.acknowledged_at >= record.drained_at
    status = job_status(node.agent.store, job)
    assert status.done < status.total and status.done + status.queued == status.total
    assert node.agent.queue.approximate_count() == status.queued  # requeued, visible, nothing lost
    requeued = [u for u in read_usage(node.agent.store) if u.outcome == "requeued"]
    assert len(requeued) == record.requeued
