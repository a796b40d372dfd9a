"""Pick the transcriber from settings: ``SPOTKIT_TRANSCRIBER`` = ``faster-whisper`` (default),
``openai`` (a metered OpenAI-compatible API; set ``SPOTKIT_MODEL`` to its model, e.g. whisper-1) or
``simulated`` (no inference; for fleet rehearsals and chaos tests). Nothing above the interface
changes with the choice."""

from __future__ import annotations

from runtime.config import Settings
from runtime.engines.base import Transcriber
from runtime.errors import ConfigError

TRANSCRIBERS = ("faster-whisper", "openai", "simulated")


def open_transcriber(settings: Settings) -> Transcriber:
    if settings.transcriber == "simulated":
        from runtime.engines.simulated import SimulatedTranscriber

        return SimulatedTranscriber(settings.model, settings.simulated_speed)
    if settings.transcriber == "openai":
        from runtime.engines.openai_api import ApiClient, OpenAITranscriber

        return OpenAITranscriber(ApiClient.from_env(), model=settings.model)
    if settings.transcriber != "faster-whisper":
        raise ConfigError(f"transcriber = {settings.transcriber!r}: use one of {', '.join(TRANSCRIBERS)} "
                          "(SPOTKIT_TRANSCRIBER)")
    from runtime.engines.faster_whisper_engine import FasterWhisperTranscriber

    return FasterWhisperTranscriber(
        settings.model, settings.model_path, settings.device, settings.compute_type,
        settings.cpu_threads, settings.batch_size,
    )
