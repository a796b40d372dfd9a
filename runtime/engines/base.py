"""The engine contract the agent programs against.

``transcribe_batch`` takes segments (already decoded 16 kHz PCM) and returns one result per segment,
in order, with cue times relative to the segment's own audio. Providers batch internally; the agent
hands them as many segments as it has. A provider raises `runtime.errors.EngineError` when a batch
fails, and the agent returns the batch's segments to the queue with that reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from runtime.media import Pcm
from runtime.work import TaskOptions, TranscriptResult


@dataclass(frozen=True)
class AudioItem:
    segment: str
    pcm: Pcm
    options: TaskOptions


# Engines that are a metered API, not the fleet: their work is billed per unit (docs/cost-model.md).
METERED_ENGINES = ("openai",)


class Transcriber(ABC):
    engine: str
    model: str
    revision: str = ""  # what the loaded model is, by content (`runtime.engines.revision`)
    # A metered API cannot be pinned to a model's content: work the controller routes to it is done
    # whatever revision the job was submitted for, and its result names the engine and model that made it.
    metered: bool = False

    @abstractmethod
    def transcribe_batch(self, items: list[AudioItem]) -> list[TranscriptResult]:
        """One result per item, same order."""

    def close(self) -> None:
        """Free the model; the default holds nothing."""


@dataclass(frozen=True)
class Translation:
    text: str
    prompt_tokens: int
    completion_tokens: int


class Translator(ABC):
    """Translate one cue's text into a target language, given the text before it as context.

    Providers raise `runtime.errors.EngineError` on failure; the segment goes back to the queue.
    """

    engine: str
    model: str

    @abstractmethod
    def translate(self, text: str, target_language: str, context: str = "") -> Translation:
        """The translation and the tokens it cost."""
