"""Pick the transcriber from settings: ``SPOTKIT_TRANSCRIBER`` = ``faster-whisper`` (default),
``openai`` (a metered API — OpenAI or Azure OpenAI by ``SPOTKIT_METERED_API``; set ``SPOTKIT_MODEL`` to
its model or deployment, e.g. whisper-1) or
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
        from runtime.engines.openai_api import OpenAITranscriber, open_api

        # An API worker serves the fleet's model name (what segments ask for) with the metered model.
        return OpenAITranscriber(open_api(settings.metered_api), model=settings.api_model or settings.model,
                                 served_as=settings.model)
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
    """``SPOTKIT_TRANSLATOR``: ``none`` (default), ``openai`` (the metered API of ``SPOTKIT_METERED_API``)
    or ``vllm`` (the node's supervised vLLM server at ``vllm_url``, same chat API, no key)."""
    if settings.translator == "none":
        return None
    from runtime.engines.openai_api import OpenAITranslator, open_api

    if settings.translator == "openai":
        return OpenAITranslator(open_api(settings.metered_api), settings.translator_model)
    if settings.translator == "vllm":
        vllm = open_api("openai", {"OPENAI_API_KEY": "EMPTY", "OPENAI_BASE_URL": settings.vllm_url})
        return OpenAITranslator(vllm, settings.translator_model, engine="vllm")
    raise ConfigError(f"translator = {settings.translator!r}: use one of {', '.join(TRANSLATORS)} (SPOTKIT_TRANSLATOR)")
