"""Packing speech into bounded segments, mapping times back, and never keeping silence."""

from __future__ import annotations

import numpy as np

from runtime.media import SAMPLE_RATE, Pcm, decode_file
from runtime.segmenter import SegmentPlan, find_speech, pack_spans, to_source_seconds
from tests.conftest import DEMO_SAMPLE

S = SAMPLE_RATE


def test_pack_respects_limit_and_order() -> None:
    spans = [(0, 5 * S), (7 * S, 15 * S), (20 * S, 28 * S), (30 * S, 31 * S)]
    plans = pack_spans(spans, 10)
    assert [p.spans for p in plans] == [((0, 5 * S),), ((7 * S, 15 * S),),
                                        ((20 * S, 28 * S), (30 * S, 31 * S))]
    assert all(p.samples <= 10 * S for p in plans)


def test_pack_keeps_every_speech_sample_once() -> None:
    rng = np.random.default_rng(7)
    starts = np.sort(rng.choice(np.arange(0, 600 * S, S), 40, replace=False))
    spans = [(int(a), int(a + rng.integers(S // 4, 25 * S))) for a in starts]
    spans = [s for i, s in enumerate(spans) if i == 0 or s[0] >= spans[i - 1][1]]
    plans = pack_spans(spans, 30)
    flat = [span for plan in plans for span in plan.spans]
    assert sum(b - a for a, b in flat) == sum(b - a for a, b in spans)
    assert all(p.samples <= 30 * S for p in plans)
    assert flat == sorted(flat)


def test_long_span_is_cut_to_fit() -> None:
    plans = pack_spans([(0, 70 * S)], 30)
    assert [p.samples for p in plans] == [30 * S, 30 * S, 10 * S]


def test_empty_and_degenerate_spans() -> None:
    assert pack_spans([], 30) == []
    assert pack_spans([(5, 5)], 30) == []


def test_to_source_seconds_walks_the_spans() -> None:
    spans = ((2 * S, 4 * S), (10 * S, 13 * S))
    assert to_source_seconds(spans, 0.0) == 2.0
    assert to_source_seconds(spans, 1.5) == 3.5
    assert to_source_seconds(spans, 2.5) == 10.5
    assert to_source_seconds(spans, 99) == 13.0  # clamps to the end


def test_segment_audio_is_the_concatenated_spans() -> None:
    pcm = Pcm(np.arange(100, dtype=np.int16))
    plan = SegmentPlan(((10, 20), (50, 55)))
    assert plan.audio(pcm).samples.tolist() == [*range(10, 20), *range(50, 55)]


def test_vad_finds_the_five_sentences_and_skips_silence() -> None:
    pcm = decode_file(DEMO_SAMPLE)
    spans = find_speech(pcm, 30)
    assert len(spans) == 5  # the sample has five sentences between long pauses
    speech = sum(b - a for a, b in spans) / S
    assert 0.3 < speech / pcm.seconds < 0.65
    # The first 2.5 s and the 6 s pause after sentence one are silence in the sample.
    assert spans[0][0] > 2.0 * S
    assert spans[1][0] - spans[0][1] > 4 * S


def test_pure_silence_has_no_speech() -> None:
    assert find_speech(Pcm(np.zeros(10 * S, dtype=np.int16)), 30) == []
