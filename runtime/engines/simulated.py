"""A simulated transcriber for fleet rehearsals, chaos tests and the eviction benchmark.

It does no inference: it takes ``audio_seconds / speed`` seconds per batch (the time a GPU would
spend) and returns a deterministic text derived from the segment id, so the queue, the cache, the
drain and the accounting can be exercised at scale on a laptop. Select it with
``SPOTKIT_TRANSCRIBER=simulated``; never use it for real work.
"""

from __future__ import annotations

import time

from runtime.engines.base import AudioItem, Transcriber
from runtime.engines.revision import SIMULATED_REVISION
from runtime.work import Cue, TranscriptResult


class SimulatedTranscriber(Transcriber):
    engine = "simulated"
    revision = SIMULATED_REVISION

    def __init__(self, model: str, speed: float) -> None:
        self.model = model
        self.speed = speed  # audio seconds per wall second

    def transcribe_batch(self, items: list[AudioItem]) -> list[TranscriptResult]:
        time.sleep(sum(item.pcm.seconds for item in items) / self.speed)
        return [
            TranscriptResult(item.segment, self.model, self.engine, item.options.language or "en",
                             [Cue(0.0, round(item.pcm.seconds, 3), f"segment {item.segment[:12]}")], 3)
            for item in items
        ]
