"""Readable subtitles on real speech through the real engine: every cue of the default SRT within the
limits, checked rule by rule from the SRT text alone, and not a word lost or changed by the cutting."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from bench.speech import make_speech
from runtime.agent import Agent
from runtime.audio_codec import encode_flac
from runtime.config import Settings
from runtime.engines.base import Transcriber
from runtime.formats import render
from runtime.jobs import assemble, submit
from runtime.media import SAMPLE_RATE, Pcm, decode_file
from runtime.queue import open_queue
from runtime.store import open_store
from runtime.subtitles.split import readable, removed_silences
from runtime.work import TaskOptions
from tests.conftest import REPO
from tests.support.speech import shared_english

CLOCK = re.compile(r"(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)")


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt(text: str) -> list[tuple[float, float, list[str]]]:
    cues = []
    for block in text.strip().split("\n\n"):
        number, timing, *lines = block.split("\n")
        found = CLOCK.fullmatch(timing)
        assert number.isdigit() and found, block
        g = found.groups()
        cues.append((_seconds(*g[:4]), _seconds(*g[4:]), lines))
    return cues


def speech_of_a_few_minutes(tmp_path: Path) -> Path:
    """About 3 minutes (2 without the shared folder): distinct synthetic sentences between pauses,
    then the real English voices of faster-whisper's test data where the checkout has them, each
    after a second of silence."""
    parts = [decode_file(make_speech(tmp_path / "synthetic.flac", min_seconds=120.0, seed=11)).samples]
    for path, english in shared_english(REPO):
        parts += [np.zeros(SAMPLE_RATE, dtype=np.int16), decode_file(path).samples[:int(english * SAMPLE_RATE)]]
    out = tmp_path / "speech.flac"
    out.write_bytes(encode_flac(Pcm(np.concatenate(parts))))
    return out


def test_every_default_srt_cue_is_within_the_limits_and_no_word_changes(
        settings: Settings, whisper: Transcriber, tmp_path: Path) -> None:
    queue, store = open_queue(settings.queue), open_store(settings.store)
    queue.ensure()
    store.ensure()
    media = speech_of_a_few_minutes(tmp_path)
    job = submit(media, queue, store, TaskOptions(word_timestamps=settings.word_timestamps),
                 settings.segment_max_seconds).job
    assert Agent(settings, queue, store, lambda: whisper, until_idle=True).run() == 0
    manifest, engine_cues = assemble(store, job)
    assert max(c.end - c.start for c in engine_cues) > 7  # Whisper's own cues are too long to read

    cues = parse_srt(render(readable(engine_cues, removed_silences(manifest)), "srt"))
    assert cues[-1][1] - cues[0][0] > 120  # minutes of speech
    for k, (start, end, lines) in enumerate(cues):
        text = " ".join(lines)
        assert 1 <= len(lines) <= 2, lines
        assert all(len(line) <= 42 for line in lines), lines
        assert 5 / 6 - 0.0005 <= end - start <= 7.0, (start, end, text)
        assert len(text) <= 20.0 * (end - start) + 1e-6, (start, end, text)  # 20 characters a second
        if k + 1 < len(cues):
            assert cues[k + 1][0] - end >= 2 / 24 - 0.0005, (end, cues[k + 1][0])
        for gap_start, gap_end in removed_silences(manifest):
            assert not (start < gap_start and gap_end < end), (start, end, text)  # never across a cut silence
    said = " ".join(" ".join(lines) for _, _, lines in cues).split()
    assert said == " ".join(c.text for c in engine_cues).split()
