"""Pick the transcriber from settings (``SPOTKIT_TRANSCRIBER``; today: ``faster-whisper``)."""

from __future__ import annotations

from runtime.config import Settings
from runtime.engines.base import Transcriber


def open_transcriber(settings: Settings) -> Transcriber:
    from runtime.engines.faster_whisper_engine import FasterWhisperTranscriber

    return FasterWhisperTranscriber(
        settings.model, settings.model_path, settings.device, settings.compute_type,
        settings.cpu_threads, settings.batch_size,
    )
