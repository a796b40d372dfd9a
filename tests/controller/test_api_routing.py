"""Routing that is executed: while self-hosting loses, queued work moves to the API queue and an API
worker (a real `spotkit agent` process with the openai provider) does it against the OpenAI-compatible
stand-in; when self-hosting wins again, new work stays with the fleet."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.config import load_settings
from runtime.fleet.local_fleet import Fleet
from runtime.fleet.supervisor import state_path
from runtime.queue import open_queue
from runtime.records import read_usage
from runtime.store.file_store import FileStore
from runtime.urls import api_queue_url
from spotkit.controller.local_slots import LocalSlots
from tests.cli.test_cli import spotkit
from tests.conftest import DATA, DEMO_SAMPLE
from tests.support.openai_standin import ApiStandIn
from tests.support.processes import kill_pid_files


@pytest.fixture
def api() -> Iterator[ApiStandIn]:
    stand_in = ApiStandIn()
    yield stand_in
    stand_in.httpd.shutdown()


def test_work_routed_to_the_api_completes_there_and_new_work_returns_to_the_fleet(api: ApiStandIn,
                                                                                   tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": api.base_url, "SPOTKIT_API_MODEL": "whisper-1",
           "SPOTKIT_IDLE_SECONDS": "1", "SPOTKIT_RETRY_SECONDS": "0"}
    settings = load_settings(env={}, home=home, transcriber="simulated")
    fleet = Fleet(settings, ["local-1"]).up()
    state_path(home).write_text(json.dumps({"pid": 0, "url": fleet.server.url, "nodes": list(fleet.nodes)}))
    LocalSlots(home).deallocate("local-1")  # scaled to zero: nothing self-hosted is running
    controller = ["controller", "once", "--backend", "local", "--prices", "snapshot", "--api-workers", "1", "--json"]
    try:
        job = spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "10", "--deadline", "6m",
                      env=env).stdout.strip()
        # A GPU at $1000/h and the job's own 6-minute deadline: the API is cheaper and the only way to make it.
        losing = spotkit(home, *controller, "--spot-price-per-hour", "1000", env=env)
        assert losing.returncode == 0, losing.stderr
        entry = json.loads(losing.stdout)
        assert entry["routing"] == "api" and entry["desired"] == 0
        actions = {a["action"]: a for a in entry["actions"]}
        assert actions["route-to-api"]["messages"] > 0 and "start-api-worker" in actions

        deadline = time.monotonic() + 120
        status: dict[str, object] = {}
        while time.monotonic() < deadline:
            status = json.loads(spotkit(home, "status", job, "--json").stdout)
            if status["complete"]:
                break
            time.sleep(0.5)
        assert status["complete"] and not status["poisoned"], status
        records = [r for r in read_usage(FileStore(home / "store")) if r.job == job and r.outcome == "done"]
        assert records and {(r.path, r.engine) for r in records} == {("api", "openai")}
        assert len([p for p, _, _ in api.requests if p.endswith("/audio/transcriptions")]) == len(records)
        assert spotkit(home, "fetch", job, "--format", "txt").stdout.split() == ["hello", "world"] * len(records)

        # Self-hosting wins again: the idle API worker is stopped and new work stays in the fleet's queue.
        winning = spotkit(home, *controller, "--spot-price-per-hour", "0.06", env=env)
        entry = json.loads(winning.stdout)
        assert entry["routing"] == "self-host" and "stop-api-worker" in [a["action"] for a in entry["actions"]]
        second = spotkit(home, "submit", str(DATA / "speech.mp3"), env=env).stdout.strip()
        again = json.loads(spotkit(home, *controller, "--spot-price-per-hour", "0.06", env=env).stdout)
        assert again["routing"] == "self-host" and "route-to-api" not in [a["action"] for a in again["actions"]], again
        assert open_queue(api_queue_url(settings.queue), env={}).approximate_count() == 0
        assert spotkit(home, "agent", "--until-idle", env=env).returncode == 0  # a fleet node's engine
        fleet_records = [r for r in read_usage(FileStore(home / "store")) if r.job == second and r.outcome == "done"]
        assert fleet_records and {(r.path, r.engine) for r in fleet_records} == {("fleet", "faster-whisper")}
    finally:
        kill_pid_files(home / "api-workers")
        fleet.down()
