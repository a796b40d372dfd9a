"""`spotkit local …`, `spotkit node …` and `spotkit evictions list` as an operator uses them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from runtime.fleet import supervisor
from tests.cli.test_cli import spotkit
from tests.conftest import DEMO_SAMPLE

SIM = {"SPOTKIT_TRANSCRIBER": "simulated", "SPOTKIT_SIMULATED_SPEED": "10",
       "SPOTKIT_SEGMENT_MAX_SECONDS": "3", "SPOTKIT_BATCH_SIZE": "2", "SPOTKIT_IMDS_POLL_SECONDS": "0.25",
       "SPOTKIT_SAFETY_MARGIN_SECONDS": "0.5", "SPOTKIT_HEARTBEAT_SECONDS": "0.5"}


def wait_json(home: Path, args: list[str], predicate, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = spotkit(home, *args, env=SIM)
        if result.returncode == 0 and predicate(json.loads(result.stdout)):
            return json.loads(result.stdout)
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting on {args}")


def test_local_fleet_evict_kill_status_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    up = spotkit(home, "local", "up", "--nodes", "2", env=SIM)
    assert up.returncode == 0, up.stderr
    try:
        again = spotkit(home, "local", "up", env=SIM)
        assert again.returncode == 1 and "already running" in again.stderr
        job = spotkit(home, "submit", str(DEMO_SAMPLE), env=SIM).stdout.strip()
        wait_json(home, ["node", "list", "--json"], lambda rows: len(rows) == 2)
        event = spotkit(home, "local", "evict", "local-1", "--notice", "2", env=SIM)
        assert event.returncode == 0 and len(event.stdout.strip()) == 36
        status = wait_json(home, ["local", "status", "--json"],
                           lambda s: s["nodes"][0]["state"] == "evicted")
        assert status["nodes"][0]["evictions"] == 1
        [record] = wait_json(home, ["evictions", "list", "--json"], lambda r: len(r) == 1)
        assert record["node"] == "local-1" and record["event_id"] == event.stdout.strip()
        assert record["will_acknowledge"]
        [approved] = supervisor.request(home, "GET", "/admin/state")["events"]
        assert approved["acknowledged_by"] == "local-1"
        assert approved["acknowledged_at"] >= record["drained_at"]
        assert spotkit(home, "local", "kill", "local-2", env=SIM).returncode == 0
        assert wait_json(home, ["local", "status", "--json"],
                         lambda s: s["nodes"][1]["state"] == "killed")["nodes"][1]["kills"] == 1
        unknown = spotkit(home, "local", "evict", "local-9", env=SIM)
        assert unknown.returncode == 1 and "no node 'local-9'" in unknown.stderr
        assert json.loads(spotkit(home, "status", job, "--json").stdout)["segments"] > 0
        table = spotkit(home, "evictions", "list", env=SIM)
        assert "Preempt" in table.stdout
    finally:
        down = spotkit(home, "local", "down", env=SIM)
    assert down.returncode == 0
    gone = spotkit(home, "local", "status", env=SIM)
    assert gone.returncode == 1 and "no local fleet is running" in gone.stderr
    # With the fleet down its slots are deallocated (their disks stay), not unknown; the eviction stays.
    after = json.loads(spotkit(home, "fleet", "status", "--backend", "local", "--json", env=SIM).stdout)
    assert {n["node"]: n["power"] for n in after["nodes"]} == {"local-1": "deallocated", "local-2": "deallocated"}
    assert after["evictions_24h"]["count"] >= 1 and "slots" not in after["unavailable"]


def test_operator_drain_and_undrain(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert spotkit(home, "local", "up", "--nodes", "1", env=SIM).returncode == 0
    try:
        wait_json(home, ["node", "list", "--json"], lambda rows: rows and rows[0]["state"] == "idle")
        drain = spotkit(home, "node", "drain", "local-1", "--deadline", "0", "--reason", "driver update",
                        env=SIM)
        assert drain.returncode == 0 and drain.stdout.startswith("drain-")
        rows = wait_json(home, ["node", "list", "--json"], lambda r: r[0]["state"] == "drained", 30)
        assert rows[0]["drain_requested"] is True
        assert "withdrawn" in spotkit(home, "node", "undrain", "local-1", env=SIM).stdout
        wait_json(home, ["node", "list", "--json"], lambda r: r[0]["state"] == "idle", 30)
        [record] = json.loads(spotkit(home, "evictions", "list", "--json", env=SIM).stdout)
        assert record["event_type"] == "Drain" and not record["will_acknowledge"]
    finally:
        spotkit(home, "local", "down", env=SIM)
