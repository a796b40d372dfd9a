"""The asynchronous job API: submit and get 202 at once, poll to completion with every format in
the result, and be called back once (the simulated engine: the API, not the speech, is the point)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest

from runtime.config import Settings, load_settings
from runtime.engines.simulated import SimulatedTranscriber
from runtime.gateway.apikeys import create_key, revoke_key
from runtime.queue import open_queue
from runtime.store import open_store
from tests.conftest import DEMO_SAMPLE
from tests.support.gateway import agent, gateway


class Hooks(ThreadingHTTPServer):
    """Receives webhooks: every POST body, in order."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.arrived = threading.Event()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                hooks.calls.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()
                hooks.arrived.set()

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/spotkit?token=s3cret"


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    server = Hooks()
    yield server
    server.shutdown()


@pytest.fixture
def sim(tmp_path: Path) -> Settings:
    return load_settings(env={}, home=tmp_path / "home", node_name="test-node", transcriber="simulated",
                         idle_seconds=0.5, retry_seconds=0, heartbeat_seconds=0.5, simulated_speed=200.0)


def test_a_job_is_accepted_at_once_polled_to_completion_and_called_back(sim: Settings, hooks: Hooks,
                                                                        tmp_path: Path) -> None:
    store = open_store(sim.store)
    store.ensure()
    _, text = create_key(store, "team-archive")
    auth = {"Authorization": f"Bearer {text}"}
    with gateway(sim, tmp_path / "spool") as base_url:
        bad = httpx2.post(f"{base_url}/spotkit/jobs", headers=auth, files={"file": ("a.wav", DEMO_SAMPLE.read_bytes())},
                          data={"model": "whisper-1", "deadline": "soon"}, timeout=30)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "deadline"
        for aimed in ("http://169.254.169.254/metadata/identity/oauth2/token", "ftp://example.com/hook"):
            bad = httpx2.post(f"{base_url}/spotkit/jobs", headers=auth, files={"file": ("a.wav", b"RIFF")},
                              data={"model": "whisper-1", "webhook": aimed}, timeout=30)
            assert bad.status_code == 400 and bad.json()["error"]["param"] == "webhook", aimed
        assert open_queue(sim.queue).approximate_count() == 0
        created = httpx2.post(f"{base_url}/spotkit/jobs", headers=auth,
                              files={"file": ("archive-042.wav", DEMO_SAMPLE.read_bytes())},
                              data={"model": "tiny.en", "deadline": "3d", "priority": "low", "webhook": hooks.url},
                              timeout=30)
        assert created.status_code == 202, created.text
        job = created.json()
        assert job["status"] == "queued" and job["done"] == 0 and job["segments"] > 0 and job["path"] == "fleet"
        assert open_queue(sim.queue).approximate_count() == job["segments"]
        with agent(sim, lambda: SimulatedTranscriber(sim.model, sim.simulated_speed)):
            deadline = time.monotonic() + 60
            status: dict[str, Any] = {}
            while time.monotonic() < deadline:
                status = httpx2.get(f"{base_url}/spotkit/jobs/{job['id']}", headers=auth, timeout=10).json()
                if status["status"] == "completed":
                    break
                time.sleep(0.2)
            assert status["status"] == "completed" and status["done"] == job["segments"], status
            assert hooks.arrived.wait(30)
    results = status["results"]
    assert set(results) == {"json", "text", "srt", "vtt", "verbose_json"}
    assert results["json"]["text"] == results["text"] == results["verbose_json"]["text"] != ""
    assert results["srt"].startswith("1\n") and results["vtt"].startswith("WEBVTT")
    assert len(results["verbose_json"]["segments"]) == results["srt"].count(" --> ")
    assert hooks.calls == [{"id": job["id"], "object": "spotkit.job", "status": "completed"}]  # once, no transcript


def test_instances_share_only_the_store_and_a_sync_request_past_its_wait_is_504_then_pollable(
        sim: Settings, tmp_path: Path) -> None:
    """Two instances on one queue and store (as behind a load balancer): a request that waits past
    --wait-seconds gets 504 naming its job, the job goes on, and the other instance serves its result
    to the same key — and honours a revocation made after both started."""
    store = open_store(sim.store)
    store.ensure()
    key, text = create_key(store, "team-lb")
    auth = {"Authorization": f"Bearer {text}"}
    with gateway(sim, tmp_path / "spool-a", wait_seconds=0.5) as first, gateway(sim, tmp_path / "spool-b") as second:
        late = httpx2.post(f"{first}/audio/transcriptions", headers=auth,
                           files={"file": ("talk.wav", DEMO_SAMPLE.read_bytes())}, data={"model": "whisper-1"},
                           timeout=30)
        assert late.status_code == 504 and late.json()["error"]["code"] == "timeout"
        job = late.headers["x-spotkit-job"]
        assert job in late.json()["error"]["message"]
        assert httpx2.get(f"{second}/spotkit/jobs/{job}", headers=auth, timeout=10).json()["status"] == "queued"
        with agent(sim, lambda: SimulatedTranscriber(sim.model, sim.simulated_speed)):
            again = httpx2.post(f"{second}/audio/transcriptions", headers=auth,
                                files={"file": ("talk.wav", DEMO_SAMPLE.read_bytes())},
                                data={"model": "whisper-1", "response_format": "text"}, timeout=60)
        assert again.status_code == 200 and again.headers["x-spotkit-job"] == job and again.text.strip()
        revoke_key(store, key.id)
        for base_url in (first, second):
            assert httpx2.get(f"{base_url}/models", headers=auth, timeout=10).status_code == 401
