"""The metered-API providers against a local OpenAI-compatible test server that misbehaves on cue."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.config import Settings
from runtime.engines.base import AudioItem
from runtime.engines.openai_api import ApiClient, OpenAITranscriber, OpenAITranslator
from runtime.errors import ConfigError, EngineError
from runtime.media import Pcm
from runtime.work import TaskOptions


class ApiStandIn:
    """Answers /v1/audio/transcriptions and /v1/chat/completions; `script` queues misbehaviour."""

    def __init__(self) -> None:
        self.script: list[tuple[str, Any]] = []  # ("status", 429) | ("garbage", None) | ("delay", s)
        self.chat_status: int | None = None  # every chat request fails with this status
        self.echo_status: int | None = None  # fail with this status, echoing the request's credentials
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stand_in.requests.append((self.path, dict(self.headers), body))
                action, value = stand_in.script.pop(0) if stand_in.script else ("ok", 0)
                if action == "delay":
                    time.sleep(value)
                if action == "status":
                    self._send(int(value), b'{"error": {"message": "slow down"}}', {"Retry-After": "0"})
                elif action == "garbage":
                    self._send(200, b"<html>gateway error</html>")
                elif stand_in.echo_status is not None:  # a careless gateway
                    auth = self.headers.get("Authorization", "")
                    self._send(stand_in.echo_status, json.dumps({"error": f"denied for {auth}; key={auth[7:]}; "
                                                                          f"retry with api_key={auth[7:]}"}).encode())
                elif stand_in.chat_status is not None and self.path.endswith("/chat/completions"):
                    self._send(stand_in.chat_status, b'{"error": {"message": "model does not exist"}}')
                elif self.path.endswith("/audio/transcriptions"):
                    self._send(200, json.dumps({"language": "en", "text": "hello world", "segments": [
                        {"start": 0.0, "end": 1.2, "text": " hello"}, {"start": 1.2, "end": 2.0, "text": " world"}]
                    }).encode())
                else:
                    request = json.loads(body)
                    text = request["messages"][-1]["content"]
                    self._send(200, json.dumps({"choices": [{"message": {"content": f"[ja] {text}"}}],
                                                "usage": {"prompt_tokens": 42, "completion_tokens": 7}}).encode())

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def api() -> Iterator[ApiStandIn]:
    stand_in = ApiStandIn()
    yield stand_in
    stand_in.httpd.shutdown()


def client(api: ApiStandIn, **options: Any) -> ApiClient:
    sleeps: list[float] = []
    made = ApiClient(api.base_url, "sk-test-SECRET", timeout=0.5, attempts=3, backoff_seconds=0.01,
                     sleep=sleeps.append, **options)
    return made


def item() -> AudioItem:
    return AudioItem("a" * 64, Pcm(np.zeros(32000, dtype=np.int16)), TaskOptions(model="whisper-1", language="en"))


def test_transcription_multipart_and_segments(api: ApiStandIn) -> None:
    [result] = OpenAITranscriber(client(api)).transcribe_batch([item()])
    assert [c.text for c in result.cues] == ["hello", "world"] and result.engine == "openai"
    path, headers, body = api.requests[0]
    assert path == "/v1/audio/transcriptions" and headers["Authorization"] == "Bearer sk-test-SECRET"
    assert b'name="model"\r\n\r\nwhisper-1' in body and b"RIFF" in body and b'name="language"\r\n\r\nen' in body


def test_translation_with_context_and_usage(api: ApiStandIn) -> None:
    out = OpenAITranslator(client(api), "gpt-4o-mini").translate("good morning", "Japanese", context="hello")
    assert (out.text, out.prompt_tokens, out.completion_tokens) == ("[ja] good morning", 42, 7)
    request = json.loads(api.requests[0][2])
    assert [m["content"] for m in request["messages"][1:]] == ["(context) hello", "good morning"]


def test_429_and_500_are_retried(api: ApiStandIn) -> None:
    api.script = [("status", 429), ("status", 500)]
    out = OpenAITranslator(client(api), "m").translate("x", "Spanish")
    assert out.text == "[ja] x" and len(api.requests) == 3


def test_retries_are_bounded(api: ApiStandIn) -> None:
    api.script = [("status", 503)] * 5
    with pytest.raises(EngineError, match=r"gave up after 3 attempts \(HTTP 503\)"):
        OpenAITranslator(client(api), "m").translate("x", "Spanish")
    assert len(api.requests) == 3


def test_timeout_then_success(api: ApiStandIn) -> None:
    api.script = [("delay", 1.0)]
    assert OpenAITranslator(client(api), "m").translate("x", "German").text == "[ja] x"


def test_malformed_body_is_a_clear_error(api: ApiStandIn) -> None:
    api.script = [("garbage", None)]
    with pytest.raises(EngineError, match="malformed reply"):
        OpenAITranscriber(client(api)).transcribe_batch([item()])


def test_client_errors_are_not_retried_and_never_show_the_key(api: ApiStandIn) -> None:
    api.script = [("status", 401)]
    with pytest.raises(EngineError) as err:
        OpenAITranslator(client(api), "m").translate("x", "French")
    assert "HTTP 401" in str(err.value) and "SECRET" not in str(err.value) and len(api.requests) == 1


def test_key_and_base_url_from_the_environment(api: ApiStandIn) -> None:
    made = ApiClient.from_env({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": api.base_url})
    assert made.base_url == api.base_url and made.api_key == "k" and "api_key" not in repr(made)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        ApiClient.from_env({})


def test_agent_switches_to_the_api_by_configuration(api: ApiStandIn, settings: Settings,
                                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """SPOTKIT_TRANSCRIBER=openai: the same submit → agent → fetch, no code path above the interface changes."""
    from runtime.agent import Agent
    from runtime.engines.factory import open_transcriber
    from runtime.jobs import assemble, submit
    from runtime.queue import open_queue
    from runtime.store import open_store
    from tests.conftest import DEMO_SAMPLE

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
    settings = replace(settings, transcriber="openai", model="whisper-1")
    queue, store = open_queue(settings.queue, env={}), open_store(settings.store, env={})
    queue.ensure()
    store.ensure()
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(model="whisper-1"), 30)
    assert Agent(settings, queue, store, lambda: open_transcriber(settings), until_idle=True).run() == 0
    _, cues = assemble(store, report.job)
    assert len(cues) == 2 * report.segments and cues[0].text == "hello"


def test_translated_track_one_cue_per_cue_and_switching_back(api: ApiStandIn, tmp_path: Path) -> None:
    """SPOTKIT_TRANSLATOR=openai against the local server: fetch --lang ja has one translated cue per
    transcribed cue; with SPOTKIT_TRANSLATOR=none the same code serves transcription only."""
    import subprocess
    import sys

    from tests.conftest import DEMO_SAMPLE

    env = {**{k: v for k, v in __import__("os").environ.items() if not k.startswith("SPOTKIT_")},
           "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": api.base_url, "SPOTKIT_TRANSLATOR": "openai",
           "SPOTKIT_TRANSLATOR_MODEL": "gpt-4o-mini", "SPOTKIT_IDLE_SECONDS": "1", "SPOTKIT_RETRY_SECONDS": "0"}

    def spotkit(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "spotkit", "--home", str(tmp_path / "home"), *args],
                              capture_output=True, text=True, timeout=300, env={**env, **extra})

    job = spotkit("submit", str(DEMO_SAMPLE), "--segment-max-seconds", "10", "--translate", "ja").stdout.strip()
    assert spotkit("agent", "--until-idle").returncode == 0
    status = json.loads(spotkit("status", job, "--json").stdout)
    assert status["complete"] and status["translated"] == {"ja": status["segments"]}
    assert f"translated into ja: {status['segments']}/{status['segments']} segments" in spotkit("status", job).stdout
    original = spotkit("fetch", job, "--format", "srt").stdout
    translated = spotkit("fetch", job, "--format", "srt", "--lang", "ja").stdout
    assert translated.count(" --> ") == original.count(" --> ") > 0
    assert [line for line in translated.splitlines() if " --> " in line] == \
           [line for line in original.splitlines() if " --> " in line]  # same timings
    assert "[ja] " in translated
    chat = [r for r in api.requests if r[0].endswith("/chat/completions")]
    assert len(chat) == original.count(" --> ")
    missing = spotkit("fetch", job, "--lang", "es")
    assert missing.returncode == 1 and "not submitted with --translate es" in missing.stderr
    plain = spotkit("submit", str(DEMO_SAMPLE), "--segment-max-seconds", "10", SPOTKIT_TRANSLATOR="none")
    assert plain.returncode == 0 and plain.stdout.strip() != job  # translation is part of the job's identity
    assert spotkit("agent", "--until-idle", SPOTKIT_TRANSLATOR="none").returncode == 0
    assert json.loads(spotkit("status", plain.stdout.strip(), "--json").stdout)["complete"]


def test_a_failed_translation_never_blocks_the_transcript(api: ApiStandIn, tmp_path: Path) -> None:
    """The translator refuses every request: the transcript is still fetchable, the translation shows
    as poisoned with its reason, and fetch --lang says what is missing instead of waiting for ever."""
    import subprocess
    import sys

    from tests.conftest import DEMO_SAMPLE

    api.chat_status = 400
    env = {**{k: v for k, v in __import__("os").environ.items() if not k.startswith("SPOTKIT_")},
           "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": api.base_url, "SPOTKIT_TRANSLATOR": "openai",
           "SPOTKIT_IDLE_SECONDS": "1", "SPOTKIT_RETRY_SECONDS": "0", "SPOTKIT_MAX_DELIVERIES": "2"}

    def spotkit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "spotkit", "--home", str(tmp_path / "home"), *args],
                              capture_output=True, text=True, timeout=300, env=env)

    job = spotkit("submit", str(DEMO_SAMPLE), "--segment-max-seconds", "10", "--translate", "ja").stdout.strip()
    assert spotkit("agent", "--until-idle").returncode == 0
    status = json.loads(spotkit("status", job, "--json").stdout)
    assert status["transcribed"] and not status["complete"]
    assert len(status["translations_poisoned"]) == status["segments"]
    assert all("HTTP 400" in p["reason"] and p["language"] == "ja" for p in status["translations_poisoned"])
    assert "poisoned translation of segment #0 into ja: " in spotkit("status", job).stdout
    transcript = spotkit("fetch", job, "--format", "txt")
    assert transcript.returncode == 0 and "goodbye" in transcript.stdout.lower()
    missing = spotkit("fetch", job, "--lang", "ja")
    assert missing.returncode == 3 and "translation into ja is not complete" in missing.stderr
    assert "the transcript is ready" in missing.stderr and "Traceback" not in missing.stderr


def test_keys_echoed_by_a_gateway_are_stored_nowhere(api: ApiStandIn, settings: Settings,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A 400 whose body repeats the Authorization header: the key must not reach the log, the queue's
    last error, the poison queue, the poison record or the usage records."""
    from runtime.agent import Agent
    from runtime.engines.factory import open_transcriber
    from runtime.jobs import job_status, submit
    from runtime.queue import open_queue
    from runtime.records import read_usage
    from runtime.store import open_store
    from tests.conftest import DEMO_SAMPLE

    key = "sk-live-SECRET0123456789abcdef"
    api.echo_status = 400
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
    settings = replace(settings, transcriber="openai", model="whisper-1", max_deliveries=2)
    queue, store = open_queue(settings.queue, 2, env={}), open_store(settings.store, env={})
    queue.ensure()
    store.ensure()
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(model="whisper-1"), 30)
    with caplog.at_level("DEBUG"):
        assert Agent(settings, queue, store, lambda: open_transcriber(settings), until_idle=True).run() == 0
    status = job_status(store, report.job)
    assert len(status.poisoned) == report.segments and "HTTP 400" in status.poisoned[0]["reason"]
    stored = [store.get(k) for k in store.list("")] + [m.body.encode() for m in queue.poison_queue().receive(32, 30)]
    stored += [r.error.encode() for r in read_usage(store)] + [caplog.text.encode()]
    leaks = [blob[:120] for blob in stored if b"SECRET0123456789" in blob]
    assert not leaks, leaks
    assert any(b"[redacted]" in blob for blob in stored)
