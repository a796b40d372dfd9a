"""`spotkit fleet status` against a real local fleet (agent processes with the simulated transcriber):
its fields checked against what the fleet did, a kill -9 seen as a stuck lease, and `--watch` drawn in
a real terminal (tmux) and stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runtime import __version__
from runtime.config import Settings, load_settings
from runtime.fleet.local_fleet import Fleet
from runtime.fleet.supervisor import state_path
from runtime.queue import open_queue
from runtime.records import read_evictions, read_heartbeats
from runtime.store.file_store import FileStore
from tests.cli.test_cli import spotkit
from tests.conftest import DEMO_SAMPLE, REPO

SIMULATED = {"SPOTKIT_TRANSCRIBER": "simulated"}  # work is pinned to the engine it is submitted for


@dataclass
class LocalFleet:
    home: Path
    settings: Settings
    fleet: Fleet

    def status(self, *args: str) -> dict[str, Any]:
        result = spotkit(self.home, "fleet", "status", "--backend", "local", "--json", *args)
        assert result.returncode == 0, result.stderr
        found: dict[str, Any] = json.loads(result.stdout)
        return found


def start_fleet(tmp_path: Path, names: list[str], **overrides: Any) -> LocalFleet:
    home = tmp_path / "home"
    settings = load_settings(env={}, home=home, transcriber="simulated", heartbeat_seconds=0.5, idle_seconds=0.5,
                             imds_poll_seconds=0.25, safety_margin_seconds=0.5, retry_seconds=0, **overrides)
    fleet = Fleet(settings, names).up()
    # What `spotkit local up` writes, so the CLI's local slot backend finds this fleet's admin URL.
    state_path(home).write_text(json.dumps({"pid": 0, "url": fleet.server.url, "nodes": list(fleet.nodes)}))
    return LocalFleet(home, settings, fleet)


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[LocalFleet]:
    made = start_fleet(tmp_path, ["local-1", "local-2"], simulated_speed=20.0)
    yield made
    made.fleet.down()


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_status_json_is_what_the_fleet_did(two_nodes: LocalFleet) -> None:
    home, settings = two_nodes.home, two_nodes.settings
    job = spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "10", env=SIMULATED).stdout.strip()
    segments = wait_for(lambda: (s := json.loads(spotkit(home, "status", job, "--json").stdout))["complete"]
                        and s["segments"], 120, "the job to complete")
    store = FileStore(home / "store")
    wait_for(lambda: sum(b.processed for b in read_heartbeats(store)) == segments
             and {b.state for b in read_heartbeats(store)} == {"idle"}, 30, "both nodes idle with the job done")

    status = two_nodes.status()
    beats = {b.node: b for b in read_heartbeats(store)}
    assert [n["node"] for n in status["nodes"]] == ["local-1", "local-2"]
    for node in status["nodes"]:
        beat = beats[node["node"]]
        assert (node["power"], node["address"], node["agent_state"], node["in_flight"]) == (
            "running", "127.0.0.1", "idle", [])
        assert (node["version"], node["engine"], node["model"]) == (__version__, "simulated", settings.model)
        assert (node["processed"], node["failures"]) == (beat.processed, beat.failures)
        assert 0 <= node["heartbeat_age_seconds"] < status["stale_after_seconds"] and not node["stale"]
    assert sum(n["processed"] for n in status["nodes"]) == segments
    assert status["queue"] == {"name": "work", "total": 0, "visible": 0, "leased": 0, "poisoned": 0,
                               "oldest_age_seconds": None, "oldest_known": True}
    assert status["problems"] == [] and status["unavailable"] == {}
    assert status["api"]["routing"] is None and status["evictions_24h"]["count"] == 0

    # An eviction: local-2 drains, acknowledges and is deallocated.
    event = two_nodes.fleet.evict("local-2", notice_seconds=1)
    wait_for(lambda: two_nodes.fleet.nodes["local-2"].state == "evicted", 60, "local-2 evicted")
    [record] = wait_for(lambda: read_evictions(store), 30, "the eviction record")
    assert record.event_id == event
    # The controller decides on an empty queue: it deallocates what is idle and writes the routing.
    decided = spotkit(home, "controller", "once", "--backend", "local", "--prices", "snapshot", "--json")
    assert decided.returncode == 0, decided.stderr
    entry = json.loads(decided.stdout)
    stopped = {a["slot"] for a in entry["actions"] if a["action"] == "deallocate" and a["ok"]}

    status = two_nodes.status()
    assert status["evictions_24h"]["count"] == 1 and status["evictions_24h"]["by_node"] == {"local-2": 1}
    assert status["evictions_24h"]["records"][0]["event_id"] == event
    powers = {n["node"]: n["power"] for n in status["nodes"]}
    assert powers["local-2"] == "deallocated"
    assert all(powers[name] == "deallocated" for name in stopped)
    assert {n["node"]: n["agent_state"] for n in status["nodes"]}["local-2"] == "drained"
    assert (status["api"]["routing"], status["api"]["routing_at"]) == (entry["routing"], entry["at"])
    assert status["api"]["workers"] is None  # the controller ran without an API path
    assert status["problems"] == []  # a drained, deallocated node is expected to be silent

    table = spotkit(home, "fleet", "status", "--backend", "local")
    assert table.returncode == 0 and "\x1b[" not in table.stdout  # a pipe: no colour
    assert "local-2" in table.stdout and "deallocated" in table.stdout and "no problems" in table.stdout
    assert f"routing: {entry['routing']}" in table.stdout
    assert "evictions in the last 24 h: 1 (local-2 ×1" in table.stdout


def test_a_node_killed_while_holding_leases_is_a_stuck_lease(tmp_path: Path) -> None:
    made = start_fleet(tmp_path, ["local-1"], simulated_speed=1.0, lease_seconds=120, batch_size=2)
    home, fleet = made.home, made.fleet
    try:
        spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "10", env=SIMULATED)
        store, queue = FileStore(home / "store"), open_queue(made.settings.queue)
        victim = fleet.nodes["local-1"]
        held: list[str] = []
        deadline = time.monotonic() + 120
        while not held and time.monotonic() < deadline:
            wait_for(lambda: (queue.depth().leased or 0) > 0, 60, "the node holding leases")
            # Freeze it, then look: its last heartbeat must list what it holds before it is killed.
            assert victim.process is not None
            victim.process.send_signal(signal.SIGSTOP)
            beat = next(b for b in read_heartbeats(store) if b.node == "local-1")
            if beat.in_flight and beat.lease_expires_at > time.time() and (queue.depth().leased or 0) > 0:
                held = beat.in_flight
                fleet.kill("local-1")
            else:
                victim.process.send_signal(signal.SIGCONT)
                time.sleep(0.2)
        assert held, "the node never held a lease when frozen"
        time.sleep(1.5)
        status = made.status("--stale-after", "1")
        [stuck] = status["problems"]
        assert (stuck["kind"], stuck["severity"], stuck["node"], stuck["in_flight"]) == (
            "stuck-lease", "critical", "local-1", len(held))
        assert 0 < stuck["lease_expires_in_seconds"] <= 120
        [node] = status["nodes"]
        assert (node["power"], node["agent_state"], node["in_flight"], node["stuck"]) == (
            "deallocated", "silent", held, True)
        assert status["queue"]["leased"] >= 1  # the queue still holds them for the dead node
    finally:
        fleet.down()


def tmux(socket: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """tmux on its own server (``-L``), its socket in the test's own short folder (``TMUX_TMPDIR``: a Unix
    socket path has ~100 characters at most), no user config."""
    folder = Path(socket).parent
    return subprocess.run(["tmux", "-L", Path(socket).name, "-f", "/dev/null", *args], capture_output=True,
                          text=True, timeout=30, env={**(env or os.environ), "TMUX_TMPDIR": str(folder)})


def test_watch_redraws_in_a_terminal_and_ctrl_c_exits_cleanly(two_nodes: LocalFleet, tmp_path: Path) -> None:
    assert shutil.which("tmux"), "tmux is installed by `make system-packages`"
    home = two_nodes.home
    wait_for(lambda: len(read_heartbeats(FileStore(home / "store"))) == 2, 60, "both nodes' heartbeats")
    socket = str(Path(tempfile.mkdtemp(prefix="spotkit-tmux-")) / f"fleet-{uuid.uuid4().hex[:8]}")
    rc_file, err_file = tmp_path / "rc", tmp_path / "stderr"
    command = (f"cd {shlex.quote(str(REPO))} && {shlex.quote(sys.executable)} -m spotkit --home "
               f"{shlex.quote(str(home))} fleet status --backend local --watch 1 2>{shlex.quote(str(err_file))}; "
               f"echo $? > {shlex.quote(str(rc_file))}")
    # COLUMNS/LINES (set by pytest-xdist's workers) would override the pane's real 200x50 size.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SPOTKIT_") and k not in ("NO_COLOR", "COLUMNS", "LINES")}
    try:
        started = tmux(socket, "new-session", "-d", "-s", "watch", "-x", "200", "-y", "50", command, env=env)
        assert started.returncode == 0, started.stderr

        def pane_when(shows: Callable[[str], bool], session: str = "watch", *flags: str) -> str:
            text = tmux(socket, "capture-pane", "-p", *flags, "-t", session).stdout
            return text if shows(text) else ""

        first = wait_for(lambda: pane_when(lambda p: "local-1" in p and "queue work:" in p), 60, "a frame")
        header = next(line for line in first.splitlines() if line.startswith("fleet status at"))
        later = wait_for(lambda: pane_when(lambda p: header not in p and "queue work:" in p), 30, "a redraw")
        assert later.count("fleet status at") == 1  # the screen is cleared between frames on a terminal
        assert "local-2" in later and "127.0.0.1" in later and "running" in later
        assert "queue work: 0 visible, 0 leased, 0 poisoned" in later

        coloured = pane_when(lambda p: "queue work:" in p, "watch", "-e")  # -e: with the escapes
        assert "\x1b[32m" in coloured  # a terminal gets colour: green for running slots and idle agents

        assert tmux(socket, "send-keys", "-t", "watch", "C-c").returncode == 0
        wait_for(lambda: rc_file.exists() and rc_file.read_text().strip(), 30, "the watch to exit")
        assert rc_file.read_text().strip() == "0"
        assert "Traceback" not in err_file.read_text() and "KeyboardInterrupt" not in err_file.read_text()

        # NO_COLOR: the same terminal, no colour.
        plain = (f"NO_COLOR=1 {shlex.quote(sys.executable)} -m spotkit --home {shlex.quote(str(home))} "
                 "fleet status --backend local; sleep 60")
        assert tmux(socket, "new-session", "-d", "-s", "plain", "-x", "200", "-y", "50", plain, env=env).returncode == 0
        shown = wait_for(lambda: pane_when(lambda p: "queue work:" in p, "plain", "-e"), 60, "the plain frame")
        assert "local-1" in shown and "\x1b[3" not in shown  # no foreground colour at all
    finally:
        tmux(socket, "kill-server")
        shutil.rmtree(Path(socket).parent, ignore_errors=True)
