"""Per-request routing: the controller's decision applied with the request's deadline (pure), and with
routing set to ``api`` the same SDK call served through an OpenAI-compatible stand-in as the metered
provider — the response header names the path, and the records carry path, cost and caller."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from runtime.config import Settings, load_settings
from runtime.engines.openai_api import OpenAITranscriber, open_api
from runtime.gateway.apikeys import create_key
from runtime.gateway.routing import STALE_SECONDS, choose_path, cost_usd
from runtime.records import (
    GATEWAY_REQUESTS,
    ROUTING_KEY,
    AuditRecord,
    RequestRecord,
    RoutingRecord,
    audit_key,
    day_of,
    dump,
    read_all,
    read_usage,
)
from runtime.store import open_store
from runtime.urls import api_queue_url
from tests.conftest import DEMO_SAMPLE
from tests.support.gateway import agent, gateway
from tests.support.openai_standin import ApiStandIn

NOW = 1_800_000_000.0
INPUTS = {"api_price_per_audio_minute": {"value": 0.006, "source": "price-book", "detail": ""},
          "spot_price_per_hour": {"value": 0.18, "source": "measured", "detail": ""},
          "audio_rtf": {"value": 50.0, "source": "prior", "detail": ""},
          "boot_seconds": {"value": 240.0, "source": "measured", "detail": ""}}


def _audit(routing: str, at: float = NOW) -> AuditRecord:
    return AuditRecord(at, {}, 0, routing, "test", inputs=INPUTS)


@pytest.mark.parametrize(("routing", "deadline", "fleet_up", "path"), [
    (None, 60.0, False, "fleet"),  # the controller has not decided yet
    ("self-host", 60.0, False, "fleet"),  # never overridden: it may be the budget speaking
    ("api", 3600.0, True, "api"),
    ("split", 60.0, True, "fleet"),  # a node is up: it can take it
    ("split", 60.0, False, "api"),  # none up, and the request cannot wait for a 240 s boot
    ("split", 3600.0, False, "fleet"),  # none up, but there is time to boot one
])
def test_the_controllers_routing_with_the_requests_deadline(routing: str | None, deadline: float,
                                                            fleet_up: bool, path: str) -> None:
    record = RoutingRecord(routing, NOW - 30) if routing else None
    assert choose_path(record, NOW, deadline, fleet_up, boot_seconds=240.0).path == path


def test_a_stale_routing_falls_back_to_the_fleet_and_costs_follow_the_controllers_inputs() -> None:
    assert choose_path(RoutingRecord("api", NOW - STALE_SECONDS - 1), NOW, 60.0, False).path == "fleet"
    audit = _audit("api")
    assert cost_usd("api", 120.0, audit) == (0.012, True)  # two minutes at $0.006
    assert cost_usd("fleet", 3600.0, audit) == (round(3600 / 50 / 3600 * 0.18, 6), True)
    assert cost_usd("cache", 3600.0, audit) == (0.0, True)
    assert cost_usd("api", 120.0, None) == (0.0, False)  # no prices published yet: unpriced, not guessed


@pytest.fixture
def api() -> Iterator[ApiStandIn]:
    stand_in = ApiStandIn()
    yield stand_in
    stand_in.httpd.shutdown()


def test_routing_api_serves_the_sdk_call_through_the_metered_stand_in(api: ApiStandIn, tmp_path: Path) -> None:
    settings: Settings = load_settings(env={}, home=tmp_path / "home", node_name="api-1", transcriber="simulated",
                                       idle_seconds=0.5, retry_seconds=0, heartbeat_seconds=0.5)
    store = open_store(settings.store)
    store.ensure()
    now = time.time()
    store.put(ROUTING_KEY, dump(RoutingRecord("api", now)))  # as the controller writes it
    store.put(audit_key(day_of(now), int(now * 1000), "test"), dump(_audit("api", now)))
    key, text = create_key(store, "team-batch")
    metered = open_api("openai", {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": api.base_url})
    worker = OpenAITranscriber(metered, model="whisper-1", served_as=settings.model)  # an API worker's engine
    with gateway(settings, tmp_path / "spool") as base_url, \
            agent(settings, lambda: worker, api_queue_url(settings.queue)):
        client = openai.OpenAI(base_url=base_url, api_key=text, max_retries=0, timeout=60)
        raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=DEMO_SAMPLE,
                                                                    response_format="json")
    assert raw.headers["x-spotkit-path"] == "api"
    segments = len([p for p, _, _ in api.requests if p.endswith("/audio/transcriptions")])
    assert segments > 0 and raw.parse().text.split() == ["hello", "world"] * segments
    usage = [r for r in read_usage(store) if r.outcome == "done"]
    assert len(usage) == segments and {(r.path, r.engine) for r in usage} == {("api", "openai")}
    [request] = read_all(store, RequestRecord, GATEWAY_REQUESTS)
    assert (request.path, request.key_id, request.key_name, request.priced) == ("api", key.id, "team-batch", True)
    assert request.audio_seconds > 0 and request.cost_usd == round(request.audio_seconds / 60 * 0.006, 6)
    assert float(raw.headers["x-spotkit-cost-usd"]) == pytest.approx(request.cost_usd, abs=1e-6)
