"""The metered-API providers, through the official openai SDK, against a local OpenAI-compatible
stand-in that misbehaves on cue — in OpenAI's URL shape with a key and in Azure OpenAI's URL shape with
Microsoft Entra ID bearer tokens (no key anywhere)."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from azure.core.credentials import AccessToken

from runtime.config import Settings
from runtime.engines.base import AudioItem
from runtime.engines.openai_api import AZURE_SCOPE, OpenAITranscriber, OpenAITranslator, open_api
from runtime.errors import ConfigError, EngineError
from runtime.media import Pcm
from runtime.retry import Backoff, RetryPolicy
from runtime.work import TaskOptions
from tests.support.openai_standin import ApiStandIn


@pytest.fixture
def api() -> Iterator[ApiStandIn]:
    stand_in = ApiStandIn()
    yield stand_in
    stand_in.httpd.shutdown()


FAST = RetryPolicy(3, Backoff(base_seconds=0.01, cap_seconds=0.05))


def client(api: ApiStandIn, key: str = "sk-test-SECRET", timeout: float = 0.5) -> openai.OpenAI:
    return open_api("openai", {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": api.base_url}, timeout=timeout, retry=FAST)


def item() -> AudioItem:
    return AudioItem("a" * 64, Pcm(np.zeros(32000, dtype=np.int16)), TaskOptions(model="whisper-1", language="en"))


def test_transcription_is_a_multipart_upload_with_segments(api: ApiStandIn) -> None:
    [result] = OpenAITranscriber(client(api)).transcribe_batch([item()])
    assert [c.text for c in result.cues] == ["hello", "world"] and result.engine == "openai"
    assert [(c.start, c.end) for c in result.cues] == [(0.0, 1.2), (1.2, 2.0)]
    path, headers, body = api.requests[0]
    assert path == "/v1/audio/transcriptions" and headers["authorization"] == "Bearer sk-test-SECRET"
    assert headers["content-type"].startswith("multipart/form-data")
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


def test_retries_are_bounded_by_the_policy(api: ApiStandIn) -> None:
    api.script = [("status", 503)] * 5
    with pytest.raises(EngineError, match=r"HTTP 503 \(transient\)") as err:
        OpenAITranslator(client(api), "m").translate("x", "Spanish")
    assert err.value.transient and err.value.kind == "transient"
    assert len(api.requests) == FAST.attempts  # the SDK's retries, counted by the kit's policy: no second layer


def test_rate_limited_after_the_retries_is_its_own_kind(api: ApiStandIn) -> None:
    api.script = [("status", 429)] * 5
    with pytest.raises(EngineError) as err:
        OpenAITranslator(client(api), "m").translate("x", "Spanish")
    assert err.value.kind == "rate_limited" and err.value.transient


def test_timeout_then_success(api: ApiStandIn) -> None:
    api.script = [("delay", 1.0)]
    assert OpenAITranslator(client(api), "m").translate("x", "German").text == "[ja] x"
    assert len(api.requests) == 2


@pytest.mark.parametrize("action", ["garbage", "bad-segments"])
def test_malformed_body_is_a_clear_error(api: ApiStandIn, action: str) -> None:
    api.script = [(action, None)]
    with pytest.raises(EngineError, match="malformed reply") as err:
        OpenAITranscriber(client(api)).transcribe_batch([item()])
    assert err.value.kind == "malformed" and not err.value.transient and len(api.requests) == 1


@pytest.mark.parametrize("status, kind", [(401, "auth"), (403, "auth"), (400, "bad_request"), (404, "bad_request")])
def test_client_errors_are_not_retried_and_never_show_the_key(api: ApiStandIn, status: int, kind: str) -> None:
    api.echo_status = status
    with pytest.raises(EngineError) as err:
        OpenAITranslator(client(api), "m").translate("x", "French")
    assert f"HTTP {status}" in str(err.value) and "SECRET" not in str(err.value) and len(api.requests) == 1
    assert err.value.kind == kind and not err.value.transient


def test_key_and_base_url_from_the_environment(api: ApiStandIn) -> None:
    made = open_api("openai", {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": api.base_url})
    assert str(made.base_url).rstrip("/") == api.base_url and "k" not in repr(made.base_url)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        open_api("openai", {})
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        open_api("azure-openai", {"AZURE_OPENAI_ENDPOINT": "http://my-resource.openai.azure.com"})
    with pytest.raises(ConfigError, match="SPOTKIT_METERED_API"):
        open_api("azure", {})


@dataclass
class TokenSource:
    """A credential as azure-identity's token provider sees one: each token valid for *lifetime* s
    on the service, reported to the client as expiring *reported* s after issue."""

    service: ApiStandIn
    lifetime: float
    reported: float
    issued: list[str] = field(default_factory=list)
    scopes: list[tuple[str, ...]] = field(default_factory=list)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token = f"entra-token-{len(self.issued) + 1}"
        self.issued.append(token)
        self.scopes.append(scopes)
        self.service.tokens[token] = time.time() + self.lifetime
        return AccessToken(token, int(time.time() + self.reported))


@pytest.fixture
def azure_api() -> Iterator[ApiStandIn]:
    stand_in = ApiStandIn(azure=True)
    yield stand_in
    stand_in.httpd.shutdown()


def azure_env(api: ApiStandIn) -> dict[str, str]:
    return {"AZURE_OPENAI_ENDPOINT": f"http://127.0.0.1:{api.port}", "OPENAI_API_VERSION": "2024-10-21"}


def test_azure_openai_with_entra_id_and_no_key(azure_api: ApiStandIn) -> None:
    credential = TokenSource(azure_api, lifetime=3600, reported=3600)
    sdk = open_api("azure-openai", azure_env(azure_api), credential=credential, retry=FAST)
    [result] = OpenAITranscriber(sdk, model="whisper").transcribe_batch([item()])
    out = OpenAITranslator(sdk, "gpt-4o-mini").translate("good morning", "Japanese")
    assert result.text == "hello world" and out.text == "[ja] good morning"
    paths = [urllib.parse.urlsplit(p).path for p, _, _ in azure_api.requests]
    assert paths == ["/openai/deployments/whisper/audio/transcriptions",
                     "/openai/deployments/gpt-4o-mini/chat/completions"]
    assert all(h["authorization"] == "Bearer entra-token-1" and "api-key" not in h
               for _, h, _ in azure_api.requests)
    assert credential.scopes[0] == (AZURE_SCOPE,) and len(credential.issued) == 1  # cached between calls


def test_an_expiring_entra_token_is_refreshed(azure_api: ApiStandIn) -> None:
    """Each token lives 2 s on the service and says so. After it has expired the next call must carry a
    fresh one from the credential: with the stale one the service answers 401 and the call fails."""
    credential = TokenSource(azure_api, lifetime=2, reported=2)
    sdk = open_api("azure-openai", azure_env(azure_api), credential=credential, retry=FAST)
    translator = OpenAITranslator(sdk, "gpt-4o-mini")
    assert translator.translate("one", "Japanese").text == "[ja] one"
    time.sleep(2.5)
    assert translator.translate("two", "Japanese").text == "[ja] two"
    assert credential.issued == ["entra-token-1", "entra-token-2"]
    assert [h["authorization"] for _, h, _ in azure_api.requests] == ["Bearer entra-token-1", "Bearer entra-token-2"]


def test_a_refused_entra_token_is_an_auth_error_and_not_retried(azure_api: ApiStandIn) -> None:
    credential = TokenSource(azure_api, lifetime=-1, reported=3600)  # the service rejects it at once
    sdk = open_api("azure-openai", azure_env(azure_api), credential=credential, retry=FAST)
    with pytest.raises(EngineError, match=r"HTTP 401 \(auth\)") as err:
        OpenAITranslator(sdk, "gpt-4o-mini").translate("x", "Japanese")
    assert err.value.kind == "auth" and len(azure_api.requests) == 1 and "entra-token" not in str(err.value)


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
    original = spotkit("fetch", job, "--format", "srt", "--cue-style", "none").stdout
    translated = spotkit("fetch", job, "--format", "srt", "--lang", "ja", "--cue-style", "none").stdout
    assert translated.count(" --> ") == original.count(" --> ") > 0
    assert [line for line in translated.splitlines() if " --> " in line] == \
           [line for line in original.splitlines() if " --> " in line]  # same timings
    assert "[ja] " in translated
    readable = spotkit("fetch", job, "--format", "srt", "--lang", "ja").stdout  # cut again within those spans

    def words(srt: str) -> list[str]:
        return " ".join(line for line in srt.splitlines() if line and " --> " not in line
                        and not line.isdigit()).split()

    assert words(readable) == words(translated) and readable.startswith("1\n")
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
