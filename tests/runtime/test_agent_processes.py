"""Agents as real processes: kill -9 mid-batch loses nothing; SIGTERM requeues and exits 0."""

from __future__ import annotations

import signal
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.config import Settings, load_settings
from runtime.formats import render
from runtime.jobs import assemble, job_status, submit
from runtime.local_agents import start_agent, stop_agent
from runtime.queue import open_queue
from runtime.records import read_usage
from runtime.store import open_store
from runtime.work import TaskOptions
from tests.conftest import DEMO_SAMPLE


def fleet_settings(home: Path) -> Settings:
    # Short segments and small batches: many batches, so a kill lands in the middle of one.
    return load_settings(env={}, home=home, segment_max_seconds=3, batch_size=2, lease_seconds=2,
                         idle_seconds=1, heartbeat_seconds=0.5, retry_seconds=0)


def submit_sample(settings: Settings) -> str:
    queue, store = open_queue(settings.queue), open_store(settings.store)
    queue.ensure()
    store.ensure()
    return submit(DEMO_SAMPLE, queue, store, TaskOptions(), settings.segment_max_seconds).job


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def leased(settings: Settings) -> int:
    """Messages currently leased (invisible) in the embedded queue."""
    with sqlite3.connect(settings.home / "queue.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM messages WHERE dequeue_count > 0 AND visible_at > ?",
                                (time.time(),)).fetchone()[0])


def run_to_completion(settings: Settings, node: str) -> None:
    agent = start_agent(settings, node, "--until-idle")
    assert agent.wait(180) == 0, (settings.home / "logs" / f"{node}.log").read_text()


def transcript_and_results(settings: Settings, job: str) -> tuple[str, dict[str, bytes]]:
    store = open_store(settings.store)
    results = {key: store.get(key) for key in store.list("results/")}
    return render(assemble(store, job)[1], "srt"), results


def test_kill_9_mid_batch_loses_nothing(tmp_path: Path) -> None:
    reference = fleet_settings(tmp_path / "reference")
    ref_job = submit_sample(reference)
    run_to_completion(reference, "ref")

    settings = fleet_settings(tmp_path / "chaos")
    job = submit_sample(settings)
    assert job == ref_job
    store, queue = open_store(settings.store), open_queue(settings.queue)
    total = job_status(store, job).total
    assert total >= 8
    victim = start_agent(settings, "victim")
    held = 0
    deadline = time.monotonic() + 120
    while not held and time.monotonic() < deadline:
        wait_for(lambda: 1 <= job_status(store, job).done < total and leased(settings) > 0, 120,
                 "the victim holding leases after its first results")
        # Freeze it, then look: a victim caught between two batches holds nothing, so it runs on.
        victim.send_signal(signal.SIGSTOP)
        held = leased(settings)
        victim.send_signal(signal.SIGKILL if held else signal.SIGCONT)
    assert held, "the victim never held a lease when frozen"
    victim.wait(10)
    done_at_kill = job_status(store, job).done
    assert done_at_kill < total and queue.approximate_count() > 0  # the kill landed mid-job

    run_to_completion(settings, "survivor")  # picks the victim's work up once its lease expires
    assert job_status(store, job).complete
    assert transcript_and_results(settings, job) == transcript_and_results(reference, ref_job)


def test_sigterm_requeues_in_flight_and_exits_zero(tmp_path: Path) -> None:
    settings = replace(fleet_settings(tmp_path), lease_seconds=300)
    job = submit_sample(settings)
    store, queue = open_store(settings.store), open_queue(settings.queue)
    total = job_status(store, job).total
    agent = start_agent(settings, "graceful")
    wait_for(lambda: job_status(store, job).done >= 1, 120, "first results")
    started = time.monotonic()
    assert stop_agent(agent, timeout=30) == 0
    assert time.monotonic() - started < 25  # well inside a 30 s preemption notice
    said = (settings.home / "logs" / "graceful.log").read_text()
    assert " batch: " in said and " drained: " in said and "handed back to the queue" in said  # a line per drain
    done = job_status(store, job).done
    left = queue.receive(32, 30)  # lease was 300 s: only an explicit requeue makes these visible
    assert done + len(left) == total
    assert queue.approximate_count() == len(left)
    for message in left:
        queue.release(message, 0)
    run_to_completion(settings, "second")
    assert job_status(store, job).complete


def _chattr(path: Path, flag: str) -> bool:
    import shutil
    import subprocess

    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_a_read_only_store_for_seconds_poisons_nothing(tmp_path: Path) -> None:
    """The real outage: the results directory made immutable (chattr +i) under a working agent
    process. Needs root and a file system with the attribute (ext4 here); CI runs as root."""
    settings = replace(fleet_settings(tmp_path), lease_seconds=30, max_deliveries=2)
    job = submit_sample(settings)
    store = open_store(settings.store)
    results = settings.home / "store" / "results" / "transcribe"
    agent = start_agent(settings, "outage", "--until-idle")
    wait_for(lambda: job_status(store, job).done >= 1, 120, "first results")
    if not _chattr(results, "+i"):
        agent.kill()
        pytest.skip("chattr +i is not permitted here (needs root and ext4/xfs); the FlakyStore test covers CI")
    try:
        time.sleep(6)  # the outage: every result upload fails meanwhile
        done_during = job_status(store, job).done
    finally:
        _chattr(results, "-i")
    assert agent.wait(180) == 0, (settings.home / "logs" / "outage.log").read_text()
    status = job_status(store, job)
    assert status.complete and not status.poisoned and done_during < status.total
    done = [r for r in read_usage(store) if r.outcome == "done"]
    assert len(done) == status.total == len({r.segment for r in done})


def test_a_killed_nodes_leases_show_with_holder_and_expiry(tmp_path: Path) -> None:
    """kill -9 mid-batch: status must not say "queued 8, in flight 0" — the work is leased by a node
    that went silent, and comes back when its lease runs out. Batches of four: the kill lands while a
    batch is in flight (with batches of two, a loaded machine could kill it in the gap between two)."""
    settings = replace(fleet_settings(tmp_path), lease_seconds=20, batch_size=4)
    job = submit_sample(settings)
    store = open_store(settings.store)
    victim = start_agent(settings, "victim")
    wait_for(lambda: job_status(store, job).done >= 1 and job_status(store, job).in_flight > 0, 120,
             "the victim working")
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    later = time.time() + 5  # the heartbeat has gone stale, the lease has not run out yet
    status = job_status(store, job, now=later, heartbeat_max_age=2)
    assert status.in_flight == 0 and status.waiting
    assert {w["node"] for w in status.waiting} == {"victim"}
    assert all(0 < float(str(w["lease_expires_in"])) <= 20 for w in status.waiting)
    expired = job_status(store, job, now=time.time() + 30, heartbeat_max_age=2)
    assert not expired.waiting and expired.queued == status.queued + len(status.waiting)
