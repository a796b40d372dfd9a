"""Find speech and pack it into segments: the unit of work, caching and eviction loss.

Silence is never sent to a GPU: only the speech spans that faster-whisper's Silero VAD finds are
kept, and consecutive spans are packed into segments of at most ``max_seconds`` of *speech* (Whisper
pads every input to a 30 s window, so packing up to the window costs nothing extra and cuts the
number of queue messages). Each segment remembers where its spans sit in the source file, so cue
timestamps map back to the original timeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from runtime.media import SAMPLE_RATE, Pcm

Span = tuple[int, int]  # [start, end) in source samples


@dataclass(frozen=True)
class SegmentPlan:
    """One segment: the speech spans (source sample ranges) whose concatenation is its audio."""

    spans: tuple[Span, ...]

    @property
    def samples(self) -> int:
        return sum(end - start for start, end in self.spans)

    def audio(self, pcm: Pcm) -> Pcm:
        return Pcm(np.concatenate([pcm.samples[s:e] for s, e in self.spans]))


def find_speech(pcm: Pcm, max_seconds: float) -> list[Span]:
    """Speech spans by faster-whisper's Silero VAD, each at most ``max_seconds`` long."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(max_speech_duration_s=max_seconds, min_silence_duration_ms=500)
    found = get_speech_timestamps(pcm.as_float(), options)
    return [(int(ts["start"]), int(ts["end"])) for ts in found]


def pack_spans(spans: list[Span], max_seconds: float) -> list[SegmentPlan]:
    """Greedily pack consecutive spans into segments holding at most ``max_seconds`` of speech.

    A span longer than the limit (VAD normally splits those) is cut into pieces that fit.
    """
    packer = SpanPacker(max_seconds)
    plans = [plan for span in sorted(spans) for plan in packer.add(span)]
    return plans + packer.finish()


class SpanPacker:
    """`pack_spans` one span at a time, for a stream: a segment is handed out as soon as the next span
    does not fit, so a streaming submit and a whole-file one pack the same spans into the same segments."""

    def __init__(self, max_seconds: float) -> None:
        self.limit = int(max_seconds * SAMPLE_RATE)
        self._current: list[Span] = []
        self._used = 0

    def add(self, span: Span) -> list[SegmentPlan]:
        """Spans must come in source order; the segments this span closed."""
        start, end = span
        if end <= start:
            return []
        pieces: list[Span] = []
        while end - start > self.limit:
            pieces.append((start, start + self.limit))
            start += self.limit
        pieces.append((start, end))
        done: list[SegmentPlan] = []
        for piece in pieces:
            length = piece[1] - piece[0]
            if self._current and self._used + length > self.limit:
                done.append(SegmentPlan(tuple(self._current)))
                self._current, self._used = [], 0
            self._current.append(piece)
            self._used += length
        return done

    def finish(self) -> list[SegmentPlan]:
        done = [SegmentPlan(tuple(self._current))] if self._current else []
        self._current, self._used = [], 0
        return done


def to_source_seconds(spans: Sequence[Sequence[int]], t: float) -> float:
    """Map a time inside a segment's concatenated audio to a time in the source file."""
    remaining = max(0.0, t) * SAMPLE_RATE
    last_end = 0
    for start, end in spans:
        length = end - start
        if remaining <= length:
            return (start + remaining) / SAMPLE_RATE
        remaining -= length
        last_end = end
    return last_end / SAMPLE_RATE
