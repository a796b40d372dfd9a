"""The agent's translation path: a transcript that is done (or found in the cache) fans out into
one ``translate`` item per target language of its job; a translate item turns the segment's cues
into the target language, one translated cue per transcribed cue, with the text before each cue as
context. Results are cached by content hash of (transcript, model, language, prompt version)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runtime.engines.base import Translator
from runtime.errors import EngineError, SpotkitError
from runtime.jobs import load_manifest
from runtime.work import TRANSCRIBE, TRANSLATE, JobManifest, TaskOptions, TranscriptResult, WorkItem, translation_key

if TYPE_CHECKING:
    from runtime.cache import ResultCache
    from runtime.queue.base import WorkQueue
    from runtime.store.base import ObjectStore

log = logging.getLogger("spotkit.agent")


class TranslateMixin:
    queue: WorkQueue
    store: ObjectStore
    cache: ResultCache
    node: str
    counts: dict[str, int]
    _translator: Translator | None
    _manifests: dict[str, JobManifest]

    clock: Callable[[], float]

    if TYPE_CHECKING:  # provided by runtime.agent.Agent
        def _complete(self, pending: Any, outcome: str, started: float, tokens_out: int, engine: str, model: str,
                      gpu_seconds: float = 0.0, tokens_in: int = 0) -> None: ...

        def _fail(self, pending: Any, error: str, started: float) -> None: ...

    def _manifest(self, job: str) -> JobManifest | None:
        if job not in self._manifests:
            try:
                self._manifests[job] = load_manifest(self.store, job)
            except SpotkitError:
                return None
        return self._manifests[job]

    def _enqueue_translations(self, item: WorkItem) -> None:
        if item.options.task != TRANSCRIBE:
            return
        manifest = self._manifest(item.job)
        for language in manifest.translate if manifest else []:
            options = TaskOptions(task=TRANSLATE, model=manifest.translator_model if manifest else "",
                                  language=language)
            self.queue.send(WorkItem(item.job, item.segment, options, item.seconds).encode())

    def _translate_items(self, pendings: list[Any]) -> None:
        for pending in pendings:
            started = self.clock()
            try:
                self._translate_one(pending, started)
            except EngineError as err:
                self._fail(pending, str(err), started)

    def _translate_one(self, pending: Any, started: float) -> None:
        item: WorkItem = pending.item
        translator = self._translator
        if translator is None:
            raise EngineError("this node has no translator (SPOTKIT_TRANSLATOR=none)")
        if translator.model != item.options.model:
            raise EngineError(f"this node translates with {translator.model!r}, the job asks for "
                              f"{item.options.model!r}")
        found = self.cache.get(TRANSCRIBE, item.segment)
        if found is None:
            raise EngineError(f"segment {item.segment[:12]} has no transcript yet")
        key = translation_key(found[0], item.options.model, item.options.language)
        if self.cache.get(TRANSLATE, key) is not None:
            self._complete(pending, "cache-hit", started, 0, "cache", item.options.model)
            self.counts["cache_hits"] += 1
            return
        transcript = TranscriptResult.from_bytes(found[0])
        context = self._previous_text(item)
        texts, tokens_in, tokens_out = [], 0, 0
        for cue in transcript.cues:
            out = translator.translate(cue.text, item.options.language, context)
            texts.append(out.text)
            tokens_in, tokens_out = tokens_in + out.prompt_tokens, tokens_out + out.completion_tokens
            context = cue.text
        result = transcript.translated(item.options.language, translator.model, translator.engine, texts, tokens_out)
        self.cache.put(TRANSLATE, key, result.to_bytes())
        self._complete(pending, "done", started, tokens_out, translator.engine, translator.model,
                       tokens_in=tokens_in)

    def _previous_text(self, item: WorkItem) -> str:
        manifest = self._manifest(item.job)
        previous = manifest.previous(item.segment) if manifest else None
        found = self.cache.get(TRANSCRIBE, previous) if previous is not None else None
        return TranscriptResult.from_bytes(found[0]).text if found else ""
