"""Whether fleet nodes answer from results a metered API made (`serve_metered_results`): by default
they do — the work is done and paid for; told not to, a fleet node redoes the segment with its own
engine and its result replaces the API's. The API's results come from the real OpenAI engine against
the OpenAI-compatible stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from runtime.agent import Agent
from runtime.config import Settings
from runtime.engines.openai_api import OpenAITranscriber, open_api
from runtime.engines.simulated import SimulatedTranscriber
from runtime.jobs import load_manifest, submit
from runtime.queue import open_queue
from runtime.records import read_usage, result_key
from runtime.store import open_store
from runtime.work import TaskOptions, TranscriptResult
from tests.conftest import DEMO_SAMPLE
from tests.support.openai_standin import ApiStandIn


@pytest.fixture
def api() -> Iterator[ApiStandIn]:
    stand_in = ApiStandIn()
    yield stand_in
    stand_in.httpd.shutdown()


def run(settings: Settings, engine: object) -> None:
    queue = open_queue(settings.queue, settings.max_deliveries)
    store = open_store(settings.store)
    assert Agent(settings, queue, store, lambda: engine, until_idle=True).run() == 0  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize("serve_metered", [True, False])
def test_fleet_nodes_answer_from_api_results_unless_told_not_to(settings: Settings, api: ApiStandIn,
                                                                 serve_metered: bool) -> None:
    queue, store = open_queue(settings.queue, settings.max_deliveries), open_store(settings.store)
    queue.ensure()
    store.ensure()
    options = TaskOptions(model="tiny.en")
    job = submit(DEMO_SAMPLE, queue, store, options, 10).job
    client = open_api("openai", {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": api.base_url}, timeout=5.0)
    run(replace(settings, transcriber="openai", node_name="api-1"), OpenAITranscriber(client, served_as="tiny.en"))
    segments = [ref.id for ref in load_manifest(store, job).segments]
    assert {TranscriptResult.from_bytes(store.get(result_key("transcribe", s))).engine for s in segments} == {"openai"}

    submit(DEMO_SAMPLE, queue, store, options, 10)  # a finished job again: every segment is enqueued
    fleet = replace(settings, transcriber="simulated", node_name="fleet-1", serve_metered_results=serve_metered)
    run(fleet, SimulatedTranscriber("tiny.en", speed=1000.0))
    outcomes = sorted({r.outcome for r in read_usage(store) if r.node == "fleet-1"})
    engines = {TranscriptResult.from_bytes(store.get(result_key("transcribe", s))).engine for s in segments}
    if serve_metered:
        assert outcomes == ["cache-hit"] and engines == {"openai"}
    else:
        assert outcomes == ["done"] and engines == {"simulated"}  # redone on the fleet, the API's replaced
