"""faster-whisper (CTranslate2) transcription, batched across segments.

The agent's segments are concatenated and handed to `BatchedInferencePipeline` with one clip per
segment, so up to ``batch_size`` segments share one encoder/decoder pass — the same batching
faster-whisper applies to one long file, applied across queue messages. Decoding is greedy at
temperature 0 (the batched pipeline never falls back to sampling), so results are deterministic and
safe to cache by content hash.

**No speech is lost at a window's end.** With timestamps, Whisper closes each sentence with a
timestamp token; text after the last one is an unfinished sentence, which sequential
`WhisperModel.transcribe` decodes again from that point (its next window starts there), but the
batched pipeline simply drops. Speech that runs up to a segment's end (a packed 29.5 s segment)
therefore lost its last sentence. `_TailAwareWhisper` notes where each window was cut, and the
transcriber decodes those tails again — in one more batch — exactly as the sequential path would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtime.engines.base import AudioItem, Transcriber
from runtime.engines.revision import folder_revision
from runtime.errors import ConfigError, EngineError
from runtime.media import SAMPLE_RATE
from runtime.models import resolve_model_path
from runtime.work import Cue, TranscriptResult


def _clip_seek(seconds: float) -> int:
    """The ``seek`` faster-whisper tags a clip's outputs with (its start in 10 ms frames, rounded as it does)."""
    return int(int(seconds * SAMPLE_RATE) / SAMPLE_RATE * 100)


MAX_TAIL_PASSES = 4
MIN_TAIL_SECONDS = 0.3  # a cut closer than this to the clip's end leaves nothing worth decoding


def _tail_aware_model(base: type) -> type:
    """faster-whisper's `WhisperModel`, noting where a batched window's text stopped short."""

    class _TailAwareWhisper(base):  # type: ignore[misc]
        cut_at: dict[int, float]

        def _split_segments_by_timestamps(self, tokenizer: Any, tokens: list[int], time_offset: float,
                                          segment_size: int, segment_duration: float, seek: int) -> Any:
            segments, new_seek, single_ending = super()._split_segments_by_timestamps(
                tokenizer=tokenizer, tokens=tokens, time_offset=time_offset, segment_size=segment_size,
                segment_duration=segment_duration, seek=seek)
            if new_seek - seek < segment_size:  # an unfinished sentence after the last timestamp was dropped
                self.cut_at[_clip_seek(time_offset)] = time_offset + (new_seek - seek) / self.frames_per_second
            return segments, new_seek, single_ending

    return _TailAwareWhisper


class FasterWhisperTranscriber(Transcriber):
    engine = "faster-whisper"

    def __init__(self, model: str, model_path: str = "", device: str = "cpu",
                 compute_type: str = "int8", cpu_threads: int = 0, batch_size: int = 8,
                 cache_dir: Path | None = None) -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        self.model = model
        self.batch_size = batch_size
        if compute_type == "bfloat16" and device == "cuda":
            raise ConfigError("compute_type = 'bfloat16': a T4 (compute capability 7.5) has no bfloat16; "
                              "use float16 or int8_float16 (SPOTKIT_COMPUTE_TYPE)")
        path = resolve_model_path(model, model_path, cache_dir)
        if not hasattr(WhisperModel, "_split_segments_by_timestamps"):
            raise EngineError("this faster-whisper release has no _split_segments_by_timestamps; spotkit "
                              "needs it to keep the speech at a segment's end (pin faster-whisper 1.x)")
        try:
            whisper = _tail_aware_model(WhisperModel)(path, device=device, compute_type=compute_type,
                                                      cpu_threads=cpu_threads, local_files_only=True)
        except (RuntimeError, ValueError, OSError) as err:
            raise EngineError(
                f"cannot load model {model!r} from {path} on {device}/{compute_type}: {err}") from err
        whisper.cut_at = {}
        self.revision = folder_revision(Path(path))
        self._whisper = whisper
        self.language_probability: float | None = None  # of the batch being decoded (multilingual models)
        self._pipeline = BatchedInferencePipeline(whisper)

    def transcribe_batch(self, items: list[AudioItem]) -> list[TranscriptResult]:
        results: dict[str, TranscriptResult] = {}
        groups: dict[tuple[str, bool], list[AudioItem]] = {}
        for item in items:
            groups.setdefault((item.options.language, item.options.word_timestamps), []).append(item)
        for (language, words), group in groups.items():
            for result in self._run(group, language or None, words):
                results[result.segment] = result
        return [results[item.segment] for item in items]

    def _run(self, items: list[AudioItem], language: str | None, words: bool = False) -> list[TranscriptResult]:
        audio = np.concatenate([item.pcm.as_float() for item in items])
        bounds: list[tuple[float, float]] = []  # each item's clip in the concatenated audio, seconds
        offset = 0
        for item in items:
            bounds.append((offset / SAMPLE_RATE, (offset + len(item.pcm.samples)) / SAMPLE_RATE))
            offset += len(item.pcm.samples)
        cues: list[list[Cue]] = [[] for _ in items]
        tokens = [0 for _ in items]
        detected = ""
        self.language_probability = None
        todo = [(index, start) for index, (start, _) in enumerate(bounds)]  # (item, where decoding starts)
        try:
            for _ in range(MAX_TAIL_PASSES):
                tails = self._pass(audio, todo, bounds, language, words, cues, tokens)
                detected = detected or tails[1]
                todo = tails[0]
                if not todo:
                    break
        except EngineError:
            raise
        except Exception as err:  # CTranslate2 raises RuntimeError/ValueError with no common base
            raise EngineError(f"faster-whisper failed on a batch of {len(items)}: {err}") from err
        return [
            TranscriptResult(item.segment, self.model, self.engine, detected, cue_list, count,
                             self.language_probability)
            for item, cue_list, count in zip(items, cues, tokens, strict=True)
        ]

    def _pass(self, audio: np.ndarray, todo: list[tuple[int, float]], bounds: list[tuple[float, float]],
              language: str | None, words: bool, cues: list[list[Cue]],
              tokens: list[int]) -> tuple[list[tuple[int, float]], str]:
        """Decode each (item, start) to its item's end in one batch; returns the cut tails and the language."""
        clips = [{"start": start, "end": bounds[index][1]} for index, start in todo]
        by_seek = {_clip_seek(start): index for index, start in todo}
        self._whisper.cut_at = {}
        segments, info = self._pipeline.transcribe(
            audio, language=language, clip_timestamps=clips, vad_filter=False,
            batch_size=self.batch_size, without_timestamps=False, beam_size=5, word_timestamps=words,
        )
        for seg in segments:
            index = by_seek.get(seg.seek)
            if index is None:
                raise EngineError(f"faster-whisper returned an output for unknown clip seek={seg.seek}")
            base, end = bounds[index]
            duration = end - base
            start = min(max(0.0, seg.start - base), duration)
            stop = min(max(start, seg.end - base), duration)
            timed = [[round(min(max(0.0, w.start - base), duration), 3),
                      round(min(max(0.0, w.end - base), duration), 3), w.word.strip()]
                     for w in seg.words or []] if words else None
            probability = (round(sum(w.probability for w in seg.words) / len(seg.words), 3)
                           if words and seg.words else None)
            cues[index].append(Cue(round(start, 3), round(stop, 3), seg.text.strip(), timed,
                                   round(seg.avg_logprob, 3), round(seg.compression_ratio, 3),
                                   round(seg.no_speech_prob, 3), probability))
            tokens[index] += len(seg.tokens)
        tails = []
        for seek, cut in self._whisper.cut_at.items():
            index = by_seek.get(seek)
            if index is not None and bounds[index][1] - cut >= MIN_TAIL_SECONDS:
                tails.append((index, cut))
        if (self._whisper.model.is_multilingual and language is None and self.language_probability is None
                and info.language_probability is not None):  # detected once per batch, on its first clip
            self.language_probability = round(float(info.language_probability), 3)
        return tails, info.language or ""
