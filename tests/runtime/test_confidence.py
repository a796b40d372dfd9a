"""Confidence honesty: a German clip through the English-only model is flagged in `status`, from the
decoder's own signals, and results that are sure of themselves — or that carry no signals — are not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runtime.agent import Agent
from runtime.confidence import flag_result
from runtime.config import Settings
from runtime.engines.base import Transcriber
from runtime.jobs import submit
from runtime.queue import open_queue
from runtime.store import open_store
from runtime.work import Cue, TaskOptions, TranscriptResult

GERMAN = ("Guten Morgen, meine Damen und Herren. Heute sprechen wir über die Zukunft der erneuerbaren "
          "Energien in Deutschland. Die Windkraft im Norden und die Sonnenenergie im Süden liefern "
          "inzwischen fast die Hälfte unseres Stroms.")


def result(*cues: Cue, language: str = "en", probability: float | None = None) -> TranscriptResult:
    return TranscriptResult("s" * 64, "tiny.en", "faster-whisper", language, list(cues), 10, probability)


def test_sure_english_and_unknown_results_are_not_flagged() -> None:
    sure = Cue(0.0, 5.0, "And so my fellow Americans", None, -0.3, 1.1, 0.06, 0.9)
    assert flag_result(result(sure), "tiny.en", "") == []
    assert flag_result(result(Cue(0.0, 5.0, "no signals kept")), "tiny.en", "") == []


def test_each_signal_flags_what_it_means() -> None:
    unsure_words = Cue(0.0, 5.0, "Go to Morgan, my environment", None, -0.2, 0.9, 0.4, 0.37)
    assert [k for k, _ in flag_result(result(unsure_words), "tiny.en", "")] == ["not-english"]
    assert [k for k, _ in flag_result(result(unsure_words), "small", "")] == ["low-confidence"]
    silence = Cue(0.0, 5.0, "Thank you.", None, -1.4, 0.8, 0.9, 0.5)
    assert [k for k, _ in flag_result(result(silence), "tiny.en", "")] == ["not-speech"]
    loop = Cue(0.0, 9.0, "n' " * 80, None, -0.2, 14.5, 0.2, 0.95)
    assert [k for k, _ in flag_result(result(loop), "tiny.en", "")] == ["repetition"]
    sure = Cue(0.0, 5.0, "Guten Morgen", None, -0.2, 1.0, 0.1, 0.9)
    assert [k for k, _ in flag_result(result(sure, language="de", probability=0.97), "small", "en")] == \
        ["wrong-language"]
    assert [k for k, _ in flag_result(result(sure, language="de", probability=0.3), "small", "")] == \
        ["unsure-language"]


def test_a_german_clip_through_tiny_en_is_flagged_in_status(settings: Settings, whisper: Transcriber,
                                                              tmp_path: Path) -> None:
    clip = tmp_path / "german.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-s", "150", "-w", str(clip), GERMAN], check=True, timeout=60)
    queue, store = open_queue(settings.queue), open_store(settings.store)
    queue.ensure()
    store.ensure()
    job = submit(clip, queue, store, TaskOptions(word_timestamps=True), settings.segment_max_seconds).job
    assert Agent(settings, queue, store, lambda: whisper, until_idle=True).run() == 0

    def status(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "spotkit", "--home", str(settings.home), "status", job, *args],
                              capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})

    table = status()
    assert table.returncode == 0 and "segment #0 (0:00–" in table.stdout
    assert "flagged not-english" in table.stdout and "probably not English" in table.stdout
    flags = json.loads(status("--json").stdout)["flags"]
    assert "not-english" in {flag["kind"] for flag in flags}


def test_signals_and_the_detected_language_survive_the_store_and_old_results_keep_their_bytes() -> None:
    kept = result(Cue(0.0, 2.0, "Guten Morgen", None, -0.25, 1.1, 0.2, 0.41), language="de", probability=0.93)
    again = TranscriptResult.from_bytes(kept.to_bytes())
    assert again == kept and again.language_probability == 0.93 and again.cues[0].word_probability == 0.41
    old = result(Cue(0.0, 2.0, "hello"))
    assert b"avg_logprob" not in old.to_bytes() and b"language_probability" not in old.to_bytes()
