"""The official ``openai`` SDK against ``spotkit serve``, an agent running real tiny.en on the
embedded default: every response format of real speech, then identical media from the cache."""

from __future__ import annotations

import re
from pathlib import Path

import httpx2
import openai
from openai.types.audio import Transcription, TranscriptionVerbose

from runtime.config import Settings
from runtime.engines.base import Transcriber
from runtime.gateway.apikeys import create_key
from runtime.queue import open_queue
from runtime.records import GATEWAY_REQUESTS, RequestRecord, read_all, read_usage
from runtime.store import open_store
from tests.conftest import DEMO_SAMPLE
from tests.support.gateway import agent, gateway

SRT_TIME = re.compile(r"^\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}$", re.M)
VTT_TIME = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}$", re.M)


def test_every_format_of_real_speech_then_a_cache_hit(settings: Settings, whisper: Transcriber,
                                                     tmp_path: Path) -> None:
    store = open_store(settings.store)
    store.ensure()
    key, text = create_key(store, "team-search")
    with gateway(settings, tmp_path / "spool") as base_url, agent(settings, lambda: whisper):
        client = openai.OpenAI(base_url=base_url, api_key=text, max_retries=0, timeout=120)
        with DEMO_SAMPLE.open("rb") as media:
            first = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=media,
                                                                          response_format="verbose_json")
        assert (first.headers["x-spotkit-path"], first.headers["x-spotkit-cache"]) == ("fleet", "miss")
        verbose = first.parse()
        assert isinstance(verbose, TranscriptionVerbose)
        words = verbose.text.lower()
        assert "silence" in words and "cached" in words and "goodbye" in words
        assert verbose.language == "english" and verbose.duration > 0 and verbose.segments
        assert all(0 <= s.start < s.end <= verbose.duration + 0.5 for s in verbose.segments)
        assert [s.start for s in verbose.segments] == sorted(s.start for s in verbose.segments)
        job = first.headers["x-spotkit-job"]
        depth = open_queue(settings.queue).approximate_count()

        answers = {}
        for fmt in ("json", "text", "srt", "vtt"):  # identical media: every one from the finished job
            raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=DEMO_SAMPLE,
                                                                        response_format=fmt, prompt="A demo.")
            assert (raw.headers["x-spotkit-path"], raw.headers["x-spotkit-cache"], raw.headers["x-spotkit-job"]) \
                == ("cache", "hit", job), fmt
            assert raw.headers["x-spotkit-ignored"] == "prompt"  # accepted, not applied: deterministic decoding
            answers[fmt] = raw.parse()
        assert open_queue(settings.queue).approximate_count() == depth  # nothing enqueued for a hit
        assert isinstance(answers["json"], Transcription) and answers["json"].text == verbose.text
        assert isinstance(answers["text"], str) and answers["text"].strip() == verbose.text
        srt, vtt = answers["srt"], answers["vtt"]
        assert isinstance(srt, str) and isinstance(vtt, str)
        assert len(SRT_TIME.findall(srt)) == len(verbose.segments) and srt.startswith("1\n")
        assert vtt.startswith("WEBVTT") and len(VTT_TIME.findall(vtt)) == len(verbose.segments)
        assert "goodbye" in srt.lower() and "goodbye" in vtt.lower()

        # Word timestamps are other options, so another job: the engine runs again, each word in source time.
        timed = client.audio.transcriptions.create(model="tiny.en", file=DEMO_SAMPLE, response_format="verbose_json",
                                                   timestamp_granularities=["word"])
        assert timed.words and [w.word for w in timed.words][-1].lower().strip(".") == "goodbye"
        assert all(0 <= w.start <= w.end <= timed.duration + 0.5 for w in timed.words)

        # The job is this key's: the job API shows it, complete, with the same transcript.
        status = httpx2.get(f"{base_url}/spotkit/jobs/{job}", headers={"Authorization": f"Bearer {text}"},
                            timeout=30).json()
        assert status["status"] == "completed" and status["results"]["json"]["text"] == verbose.text
        metrics = httpx2.get(base_url.removesuffix("/v1") + "/metrics", timeout=30).text
    requests = list(read_all(store, RequestRecord, GATEWAY_REQUESTS))
    assert [(r.path, r.key_id, r.key_name) for r in requests] == \
        [("fleet", key.id, "team-search")] + [("cache", key.id, "team-search")] * 4 + [("fleet", key.id, "team-search")]
    assert all(r.cost_usd == 0 for r in requests if r.path == "cache")
    assert {r.outcome for r in read_usage(store)} == {"done"}  # the engine ran once, for the first request
    assert 'spotkit_gateway_requests_total{path="cache",route="transcriptions",status="200"} 4.0' in metrics
