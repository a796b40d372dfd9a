"""On call with a node that died holding work: `spotkit queue leases` shows what it holds, `spotkit queue
release` hands it back at once — long before the 300 s leases would run out — and a live node's
leases are refused unless forced. Real agent processes, frozen (SIGSTOP) once they hold leases."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from runtime.config import Settings, load_settings
from runtime.errors import NotFound
from runtime.jobs import job_status, load_manifest
from runtime.local_agents import start_agent, stop_agent
from runtime.queue import open_queue
from runtime.records import BadRecord, Heartbeat, dump, heartbeat_key, load
from runtime.store import open_store
from tests.cli.test_cli import spotkit
from tests.runtime.test_agent_processes import run_to_completion, submit_sample, wait_for

LEASE_SECONDS = 300  # far beyond the test: whatever comes back early was released, not expired


def lease_settings(home: Path) -> Settings:
    # The simulated engine spends 3 s on a batch of four: the agent holds leases most of the time.
    return load_settings(env={}, home=home, transcriber="simulated", simulated_speed=4, segment_max_seconds=3,
                         batch_size=4, lease_seconds=LEASE_SECONDS, idle_seconds=1, heartbeat_seconds=0.5,
                         retry_seconds=0)


def leased_in_queue(settings: Settings) -> set[tuple[str, str]]:
    """(message id, pop receipt) of every message leased (invisible) in the embedded work queue now."""
    with sqlite3.connect(settings.home / "queue.db") as conn:
        return set(conn.execute("SELECT id, pop_receipt FROM messages WHERE queue = 'work' AND dequeue_count > 0 "
                                "AND visible_at > ?", (time.time(),)).fetchall())


def published(settings: Settings, node: str) -> set[tuple[str, str]]:
    try:
        beat = load(Heartbeat, open_store(settings.store).get(heartbeat_key(node)))
    except (NotFound, BadRecord):
        return set()
    return {(lease.message_id, lease.pop_receipt) for lease in beat.leases}


def queue_unlocked(settings: Settings) -> bool:
    """No transaction of the frozen agent holds the queue's write lock (a release would wait on it)."""
    conn = sqlite3.connect(settings.home / "queue.db", timeout=0.05, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def freeze_holding(agent: subprocess.Popen[bytes], settings: Settings, node: str) -> set[tuple[str, str]]:
    """Freeze *agent* at a moment it holds leases and its heartbeat has published exactly those, with
    their current receipts; returns them. Caught between a renewal and its heartbeat, it runs on."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        wait_for(lambda: bool(leased_in_queue(settings)), 120, f"{node} holding leases")
        agent.send_signal(signal.SIGSTOP)
        held = leased_in_queue(settings)
        if held and held == published(settings, node) and queue_unlocked(settings):
            return held
        agent.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError(f"{node} was never frozen holding exactly the leases it published")


def test_a_killed_nodes_leases_are_listed_and_released_long_before_they_expire(tmp_path: Path) -> None:
    settings = lease_settings(tmp_path / "home")
    home, store, queue = settings.home, open_store(settings.store), open_queue(settings.queue)
    job = submit_sample(settings)
    segments = {ref.id for ref in load_manifest(store, job).segments}
    victim = start_agent(settings, "victim")
    held = freeze_holding(victim, settings, "victim")
    victim.send_signal(signal.SIGKILL)  # mid-batch, no notice
    victim.wait(10)
    ids = {message_id for message_id, _ in held}

    rows = json.loads(spotkit(home, "queue", "leases", "--json").stdout)
    assert {(r["message_id"], r["pop_receipt"]) for r in rows} == held
    assert all(r["node"] == "victim" and r["job"] == job and r["segment"] in segments for r in rows)
    assert all(not r["expired"] and r["expires_at"] > time.time() + LEASE_SECONDS - 60 for r in rows)
    assert not any(r["releasable"] for r in rows)  # its heartbeat is seconds old: it may be alive

    refused = spotkit(home, "queue", "release", "--node", "victim", "--yes")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: victim is alive") and "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert leased_in_queue(settings) == held  # refused: nothing was handed back

    time.sleep(1.5)  # its heartbeat is now older than --stale-after 1: the node counts as gone
    table = spotkit(home, "queue", "leases", "--node", "victim", "--stale-after", "1")
    assert table.returncode == 0 and "silent" in table.stdout and "queue release --node victim" in table.stdout
    assert all(message_id in table.stdout for message_id in ids)
    assert time.strftime("%Y-%m-%d", time.gmtime()) in table.stdout
    released = spotkit(home, "queue", "release", "--node", "victim", "--stale-after", "1", "--yes")
    assert released.returncode == 0, released.stderr
    assert f"victim: {len(ids)} released, 0 already moved, 0 failed" in released.stdout

    back = queue.receive(32, LEASE_SECONDS)  # at once, not in five minutes
    assert ids <= {m.id for m in back}
    assert all(m.dequeue_count == 2 for m in back if m.id in ids)  # the dead node's try counted once
    for message in back:
        queue.release(message, 0)
    again = spotkit(home, "queue", "release", "--node", "victim", "--stale-after", "1", "--yes")
    assert again.returncode == 0 and f"0 released, {len(ids)} already moved" in again.stdout

    run_to_completion(settings, "survivor")  # the bodies are intact: every segment gets its result
    assert job_status(store, job).complete


def test_a_live_node_lets_go_only_when_forced_and_loses_nothing(tmp_path: Path) -> None:
    settings = lease_settings(tmp_path / "home")
    home, store = settings.home, open_store(settings.store)
    job = submit_sample(settings)
    busy = start_agent(settings, "busy")
    try:
        held = freeze_holding(busy, settings, "busy")
        refused = spotkit(home, "queue", "release", "--node", "busy", "--yes")
        assert refused.returncode == 1 and "busy is alive" in refused.stderr
        assert leased_in_queue(settings) == held
        forced = spotkit(home, "queue", "release", "--node", "busy", "--force", "--yes")
        assert forced.returncode == 0 and f"busy: {len(held)} released" in forced.stdout
        assert not leased_in_queue(settings) & held
    finally:
        busy.send_signal(signal.SIGCONT)
    # Its renewals and deletes now find stale receipts: it lets go of those messages and works on.
    assert stop_agent(busy) == 0, (home / "logs" / "busy.log").read_text()
    run_to_completion(settings, "survivor")
    assert job_status(store, job).complete


def test_the_lease_commands_explain_themselves(tmp_path: Path) -> None:
    for command in ("leases", "release"):
        shown = spotkit(tmp_path, "queue", command, "--help")
        assert shown.returncode == 0 and "Examples:" in shown.stdout
    assert "Exit codes:" in spotkit(tmp_path, "queue", "release", "--help").stdout
    assert spotkit(tmp_path, "queue", "release").returncode == 2  # --node is required: a usage error
    unknown = spotkit(tmp_path, "queue", "leases", "--node", "typo")
    assert unknown.returncode == 1 and "no node 'typo' has sent a heartbeat; known nodes: none" in unknown.stderr


def test_a_node_holding_nothing_is_fine_and_unpublished_work_is_never_called_released(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = open_store(load_settings(env={}, home=home).store)
    store.ensure()
    now = time.time()
    store.put(heartbeat_key("idle-1"), dump(Heartbeat("idle-1", "idle", "1", now - 120)))
    store.put(heartbeat_key("old-1"), dump(Heartbeat("old-1", "working", "0.1", now - 120, ["s1", "s2"],
                                                     lease_expires_at=now + 60)))
    nothing = spotkit(home, "queue", "release", "--node", "idle-1")
    assert nothing.returncode == 0 and "idle-1 holds no leases" in nothing.stdout
    old = spotkit(home, "queue", "release", "--node", "old-1", "--yes")
    assert old.returncode == 1 and "does not publish its leases: its 2 in-flight segments" in old.stderr
    listed = spotkit(home, "queue", "leases")
    assert listed.returncode == 0 and "old-1: 2 in-flight segments without published leases" in listed.stdout
    assert json.loads(spotkit(home, "queue", "leases", "--json").stdout) == []
    assert "idle-1 holds no leases" in spotkit(home, "queue", "leases", "--node", "idle-1").stdout
