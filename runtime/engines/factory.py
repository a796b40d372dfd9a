"""Pick the transcriber from settings: ``SPOTKIT_TRANSCRIBER`` = ``faster-whisper`` (default),
``openai`` (a metered OpenAI-compatible API; set ``SPOTKIT_MODEL`` to its model, e.g. whisper-1) or
``simulated`` (no inference; for fleet rehearsals and chaos tests). Nothing above the interface
changes with the choice."""

from __future__ import annotations

from runtime.config import Settings
from runtime.engines.base import Transcriber, Translator
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
        settings.cpu_threads, settings.batch_size, settings.model_cache_dir,
    )


TRANSLATORS = ("none", "openai", "vllm")


def open_translator(settings: Settings) -> Translator | None:
    """``SPOTKIT_TRANSLATOR``: ``none`` (default), ``openai`` (OPENAI_BASE_URL / OPENAI_API_KEY) or
    ``vllm`` (the node's supervised vLLM server at ``vllm_url``, same chat API)."""
    if settings.translator == "none":
        return None
    from runtime.engines.openai_api import ApiClient, OpenAITranslator

    if settings.translator == "openai":
        return OpenAITranslator(ApiClient.from_env(), settings.translator_model)
    if settings.translator == "vllm":
        return OpenAITranslator(ApiClient(settings.vllm_url, "EMPTY"), settings.translator_model, engine="vllm")
    raise ConfigError(f"translator = {settings.translator!r}: use one of {', '.join(TRANSLATORS)} (SPOTKIT_TRANSLATOR)")
