"""The agent's translation path: a transcript that is done (or found in the cache) fans out into
one ``translate`` item per target language of its job; a translate item turns the segment's cues
into the target language, one translated cue per transcribed cue, with the text before each cue as
context. Results are cached by content hash of (transcript, model, language, prompt version)."""

from __future__ import annotations

from collections.abc import Callable

from runtime.agent.batch import Pending
from runtime.agent.settle import Settler
from runtime.cache import ResultCache
from runtime.engines.base import Translator
from runtime.errors import EngineError, SpotkitError
from runtime.jobs import load_manifest
from runtime.queue.base import WorkQueue
from runtime.store.base import ObjectStore
from runtime.work import TRANSCRIBE, TRANSLATE, JobManifest, TaskOptions, TranscriptResult, WorkItem, translation_key


class Manifests:
    """Job manifests, read once per job and kept once complete (a complete one never changes).

    A job still being read by `spotkit submit` has a *reading* manifest, rewritten as segments are
    found, each before it is enqueued: it is read again each time it is asked for, so the segment in
    hand (and the one before it, the translation's context) is always in it."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._known: dict[str, JobManifest] = {}

    def get(self, job: str) -> JobManifest | None:
        known = self._known.get(job)
        if known is not None and known.complete:
            return known
        try:
            manifest = load_manifest(self.store, job)
        except SpotkitError:
            return None
        self._known[job] = manifest
        return manifest


class FanOut:
    """Enqueue a finished transcript's translations (called before its message is deleted)."""

    def __init__(self, queue: WorkQueue, manifests: Manifests) -> None:
        self.queue, self.manifests = queue, manifests

    def __call__(self, item: WorkItem) -> None:
        if item.options.task != TRANSCRIBE:
            return
        manifest = self.manifests.get(item.job)
        for language in manifest.translate if manifest else []:
            options = TaskOptions(task=TRANSLATE, model=manifest.translator_model if manifest else "",
                                  language=language)
            self.queue.send(WorkItem(item.job, item.segment, options, item.seconds, item.deadline_at,
                                     item.priority).encode())


class Translation:
    """Runs translate items with the node's translator (none, a metered API, or vLLM)."""

    def __init__(self, cache: ResultCache, manifests: Manifests, settler: Settler,
                 clock: Callable[[], float]) -> None:
        self.cache, self.manifests, self.settler, self.clock = cache, manifests, settler, clock
        self.translator: Translator | None = None  # loaded with the engine

    def run(self, pendings: list[Pending]) -> None:
        for pending in pendings:
            started = self.clock()
            try:
                self._translate(pending, started)
            except EngineError as err:
                self.settler.failed(pending, str(err), started)

    def _translate(self, pending: Pending, started: float) -> None:
        item = pending.item
        translator = self.translator
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
            self.settler.done(pending, "cache-hit", started, engine="cache", model=item.options.model)
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
        self.settler.done(pending, "done", started, engine=translator.engine, model=translator.model,
                          tokens_out=tokens_out, tokens_in=tokens_in)

    def _previous_text(self, item: WorkItem) -> str:
        manifest = self.manifests.get(item.job)
        previous = manifest.previous(item.segment) if manifest else None
        found = self.cache.get(TRANSCRIBE, previous) if previous is not None else None
        return TranscriptResult.from_bytes(found[0]).text if found else ""
