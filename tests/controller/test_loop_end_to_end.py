"""The loop closed, in minutes: the controller over the local fleet (simulated engine) and an
OpenAI-compatible stand-in. While self-hosting loses, work goes to the API and the fleet stays at
zero; when it wins, the fleet goes 0 → N and does the work; when the queue is empty, back to 0. Every
decision is in `spotkit controller history` with the inputs it stood on."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from policies.inputs import FleetInputs, given
from policies.scaling import ScalingParams
from runtime.config import load_settings, settings_env
from runtime.fleet.local_fleet import Fleet
from runtime.fleet.supervisor import state_path
from runtime.jobs import job_status, submit
from runtime.queue import open_queue
from runtime.records import read_usage
from runtime.store import open_store
from runtime.urls import api_queue_url
from runtime.work import TaskOptions
from spotkit.controller.api_path import ApiPath, LocalApiWorkers
from spotkit.controller.local_slots import LocalSlots
from spotkit.controller.loop import Controller, ControllerSettings
from tests.cli.test_cli import spotkit
from tests.conftest import DEMO_SAMPLE
from tests.support.openai_standin import ApiStandIn
from tests.support.processes import kill_pid_files


@pytest.fixture
def api() -> Iterator[ApiStandIn]:
    stand_in = ApiStandIn()
    yield stand_in
    stand_in.httpd.shutdown()


def until(done: Callable[[], bool], step: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        step()
        time.sleep(0.3)


def test_api_while_self_hosting_loses_fleet_0_to_n_to_0_when_it_wins(api: ApiStandIn, tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(env={}, home=home, transcriber="simulated", simulated_speed=20.0, idle_seconds=1.0,
                             heartbeat_seconds=0.5, retry_seconds=0.0)
    queue, store = open_queue(settings.queue, env={}), open_store(settings.store, env={})
    queue.ensure()
    store.ensure()
    fleet = Fleet(settings, ["local-1", "local-2"]).up()
    state_path(home).write_text(json.dumps({"pid": 0, "url": fleet.server.url, "nodes": list(fleet.nodes)}))
    slots = LocalSlots(home)
    for name in ("local-1", "local-2"):
        slots.deallocate(name)  # start at zero
    worker_env = {**os.environ, **settings_env(settings), "OPENAI_API_KEY": "sk-test",
                  "OPENAI_BASE_URL": api.base_url, "SPOTKIT_API_MODEL": "whisper-1"}
    api_url = api_queue_url(settings.queue)
    api_queue = open_queue(api_url, env={})
    api_queue.ensure()
    inputs: list[FleetInputs] = []
    params = ScalingParams(max_slots=2, boot_seconds=0.0, spot_price_per_hour=0.0, evictions_per_hour=0.0,
                           idle_grace_seconds=2.0, cooldown_seconds=2.0)
    ctl = Controller(slots, queue, store, ControllerSettings(params, deadline_seconds=3600), lambda: inputs[-1],
                     api=ApiPath(api_queue, LocalApiWorkers(home, worker_env, api_url), max_workers=1))

    def running() -> int:
        return sum(s.power == "running" for s in slots.list_slots())

    began = time.time()
    try:
        # 1. Self-hosting loses: a GPU at $1000/h with a 200 s boot, a job due in 6 minutes.
        inputs.append(given(audio_rtf=20, boot_seconds=200, evictions_per_hour=0.0, spot_price_per_hour=1000,
                            api_price_per_audio_minute=0.006))
        first = submit(DEMO_SAMPLE, queue, store, TaskOptions(model=settings.model), 10, deadline="6m").job
        entry = ctl.once()
        assert entry["routing"] == "api" and entry["desired"] == 0
        until(lambda: job_status(store, first).complete, ctl.once, 120, "the API path to finish the first job")
        assert running() == 0

        # 2. Self-hosting wins: cheap GPUs that boot at once, a job due in 90 s that is more than one
        #    GPU's worth at this real-time factor. The fleet goes 0 -> N and the API worker stops. (The
        #    policy batches work until its slack runs out: the nearer the deadline, the sooner it starts.)
        inputs.append(given(audio_rtf=0.5, boot_seconds=1, evictions_per_hour=0.0, spot_price_per_hour=0.06,
                            api_price_per_audio_minute=0.006))
        second = submit(DEMO_SAMPLE, queue, store, TaskOptions(model=settings.model), 7, deadline="90s").job
        peak = 0

        def tick() -> None:
            nonlocal peak
            ctl.once()
            peak = max(peak, running())

        until(lambda: job_status(store, second).complete, tick, 120, "the fleet to finish the second job")
        assert peak >= 1

        # 3. Nothing queued: past the idle grace the fleet is back at zero.
        until(lambda: running() == 0, ctl.once, 60, "the fleet to scale back to zero")
    finally:
        kill_pid_files(home / "api-workers")
        fleet.down()
    ended = time.time()

    paths = {(r.job, r.path) for r in read_usage(store) if r.outcome == "done"}
    assert (first, "api") in paths and (first, "fleet") not in paths
    assert (second, "fleet") in paths and (second, "api") not in paths
    history = [json.loads(line) for line in spotkit(home, "controller", "history", "--last", "1000",
                                                    "--json").stdout.splitlines()]
    routings = [h["routing"] for h in history]
    assert routings[0] == "api" and "self-host" in routings
    assert all(h["inputs"]["spot_price_per_hour"]["source"] == "flag" for h in history)
    starts = [a for h in history for a in h["actions"] if a["action"] == "start"]
    stops = [a for h in history for a in h["actions"] if a["action"] == "deallocate"]
    assert starts and stops and any(a["action"] == "stop-api-worker" for h in history for a in h["actions"])

    # The month's report prices the GPU time the power history recorded: slots billed only while
    # allocated (within this test's wall time), and never less than the fleet's engines were busy.
    month = time.strftime("%Y-%m", time.gmtime())
    report = json.loads(spotkit(home, "report", "--month", month, "--prices", "snapshot", "--format", "json").stdout)
    assert report["paid_time_source"].startswith("power-state history"), report["paid_time_source"]
    by_slot = report["paid_node_hours_by_slot"]
    assert set(by_slot) == {"local-1", "local-2"}
    paid_seconds = sum(by_slot.values()) * 3600
    assert 0 < paid_seconds <= 2 * (ended - began)
    assert report["work"]["busy_gpu_seconds"] <= paid_seconds + 2 * 3.6  # hours are rounded to 3 decimals
