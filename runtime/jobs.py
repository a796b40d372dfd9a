"""Report a job's progress and assemble its results in source time (submitting is runtime/submit.py)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from runtime.errors import NotFound, SpotkitError
from runtime.records import (
    BACKLOG,
    BacklogRecord,
    BadRecord,
    PoisonRecord,
    job_key,
    load,
    poison_key,
    read_heartbeats,
    result_key,
    translation_result_key,
)
from runtime.segmenter import to_source_seconds
from runtime.store.base import ObjectStore
from runtime.submit import QUEUED_MARKER_TTL_SECONDS, SubmitProgress, SubmitReport, submit
from runtime.work import (
    COMPLETE,
    FAILED,
    READING,
    TRANSLATE,
    BadResult,
    JobManifest,
    SegmentRef,
    TranscriptResult,
    translation_key,
)

JOB_ID = re.compile(r"^[0-9a-f]{24}$")

__all__ = ["QUEUED_MARKER_TTL_SECONDS", "JobStatus", "SourceCue", "SubmitProgress", "SubmitReport", "assemble",
           "job_status", "load_manifest", "submit"]


def job_media(store: ObjectStore, jobs: set[str]) -> dict[str, tuple[float, float]]:
    """(media seconds, speech seconds) of each job whose manifest can be read; the others are left out
    (a job deleted since, or work from before manifests were kept) and count no silence. So is a job
    still being read by `spotkit submit`: its manifest counts only the media read so far, and a rollup
    keeps what it is given."""
    media = {}
    for job in sorted(jobs):
        try:
            manifest = load_manifest(store, job)
        except SpotkitError:
            continue
        if manifest.state == READING:
            continue
        media[job] = (manifest.duration_seconds, manifest.speech_seconds)
    return media


def load_manifest(store: ObjectStore, job: str) -> JobManifest:
    if not JOB_ID.match(job):
        raise SpotkitError(f"{job!r} is not a job id (24 hex digits, as `spotkit submit` prints)")
    try:
        data = store.get(job_key(job))
    except NotFound:
        raise SpotkitError(
            f"no job {job!r} in {store.url}; check the id printed by `spotkit submit`") from None
    try:
        return JobManifest.from_bytes(data)
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise SpotkitError(f"job {job}'s manifest in {store.url} is corrupt ({err or type(err).__name__}); "
                           "submit the media file again to rewrite it") from None


@dataclass
class JobStatus:
    job: str
    source: str
    total: int
    done: int = 0
    in_flight: int = 0  # leased by a node that is alive
    queued: int = 0
    poisoned: list[dict[str, str]] = field(default_factory=list)
    # Leased by a node that went silent (killed, deallocated): back in the queue when the lease runs out.
    waiting: list[dict[str, object]] = field(default_factory=list)
    translated: dict[str, int] = field(default_factory=dict)  # language -> segments translated
    translations_poisoned: list[dict[str, str]] = field(default_factory=list)
    deadline_at: float | None = None  # while its submission is in the backlog (the controller plans on it)
    priority: str = ""
    # READING while `spotkit submit` is still reading the file: *total* counts the segments found so far.
    state: str = COMPLETE
    error: str = ""  # why the submit failed (state FAILED)
    read_seconds: float = 0.0  # of the media, so far while reading

    @property
    def reading(self) -> bool:
        return self.state == READING

    @property
    def transcribed(self) -> bool:
        """Every segment has its transcript: `fetch` of the transcript works, whatever the translations do.
        Never while the file is still read (more segments may come) or after its submit failed."""
        return self.state == COMPLETE and self.done == self.total

    def translated_into(self, language: str) -> bool:
        return self.state == COMPLETE and self.translated.get(language, -1) == self.total

    @property
    def complete(self) -> bool:
        return self.transcribed and all(self.translated_into(lang) for lang in self.translated)

    @property
    def finished(self) -> bool:
        """Nothing left to wait for: every segment and translation is done or poisoned (a job still being
        read is never finished; one whose submit failed is, once its queued segments are)."""
        if self.state == READING:
            return False
        poisoned = {lang: 0 for lang in self.translated}
        for entry in self.translations_poisoned:
            poisoned[entry["language"]] = poisoned.get(entry["language"], 0) + 1
        return (self.done + len(self.poisoned) == self.total
                and all(self.translated[lang] + poisoned[lang] >= self.done for lang in self.translated))

    def as_dict(self) -> dict[str, object]:
        return {"job": self.job, "source": self.source, "segments": self.total, "done": self.done,
                "in_flight": self.in_flight, "queued": self.queued, "poisoned": self.poisoned,
                "waiting_for_lease_expiry": self.waiting, "translated": self.translated,
                "translations_poisoned": self.translations_poisoned, "transcribed": self.transcribed,
                "complete": self.complete, "deadline_at": self.deadline_at, "priority": self.priority,
                "state": self.state, "error": self.error, "read_seconds": self.read_seconds}


def job_status(store: ObjectStore, job: str, now: float | None = None,
               heartbeat_max_age: float = 30.0) -> JobStatus:
    manifest = load_manifest(store, job)
    now = time.time() if now is None else now
    task = manifest.options.task
    holders: dict[str, tuple[str, bool, float]] = {}  # segment -> (node, alive, lease runs out at)
    for beat in read_heartbeats(store):
        alive = beat.is_fresh(now, heartbeat_max_age)
        for segment in beat.in_flight:
            if alive or segment not in holders:
                holders[segment] = (beat.node, alive, beat.lease_expires_at)
    status = JobStatus(job, manifest.source, len(manifest.segments), translated=dict.fromkeys(manifest.translate, 0),
                       state=manifest.state, error=manifest.error, read_seconds=manifest.duration_seconds)
    for ref in manifest.segments:
        holder = holders.get(ref.id)
        if store.exists(result_key(task, ref.id)):
            status.done += 1
            if manifest.translate:
                _translation_status(store, manifest, ref, status)
        elif holder is not None and holder[1]:
            status.in_flight += 1
        elif store.exists(poison_key(ref.id)):
            record = load(PoisonRecord, store.get(poison_key(ref.id)), poison_key(ref.id))
            status.poisoned.append({"segment": ref.id, "index": str(ref.index), "reason": record.reason})
        elif holder is not None and holder[2] > now:
            status.waiting.append({"segment": ref.id, "index": ref.index, "node": holder[0],
                                   "lease_expires_in": round(holder[2] - now, 1)})
        else:
            status.queued += 1
    mine = [key for key in store.list(BACKLOG) if key.endswith(f"-{job}.json")]
    if mine:
        try:
            latest = load(BacklogRecord, store.get(max(mine)), max(mine))
            status.deadline_at, status.priority = latest.deadline_at, latest.priority
        except (BadRecord, NotFound):
            pass  # gone meanwhile (the controller found it done), or unreadable: the counts still stand
    return status


def _translation_status(store: ObjectStore, manifest: JobManifest, ref: SegmentRef, status: JobStatus) -> None:
    transcript = store.get(result_key(manifest.options.task, ref.id))
    for language in manifest.translate:
        key = translation_key(transcript, manifest.translator_model, language)
        if store.exists(translation_result_key(key)):
            status.translated[language] += 1
        elif store.exists(poison_key(ref.id, TRANSLATE, language)):
            where = poison_key(ref.id, TRANSLATE, language)
            record = load(PoisonRecord, store.get(where), where)
            status.translations_poisoned.append({"segment": ref.id, "index": str(ref.index), "language": language,
                                                 "reason": record.reason})


@dataclass(frozen=True)
class SourceCue:
    start: float  # seconds in the source file
    end: float
    text: str
    words: list[list[object]] | None = None


def assemble(store: ObjectStore, job: str, language: str = "") -> tuple[JobManifest, list[SourceCue]]:
    """Every cue of a complete job (or of its translation into *language*), in source time order.
    Refuses an incomplete job, and one whose media is still being read."""
    manifest = load_manifest(store, job)
    if manifest.state == READING:
        raise SpotkitError(f"job {job} is still being read by `spotkit submit` ({len(manifest.segments)} segments "
                           f"in its first {manifest.duration_seconds:.0f} s so far); see `spotkit status {job}`")
    if manifest.state == FAILED:
        raise SpotkitError(f"job {job}'s submit failed: {manifest.error}")
    task = manifest.options.task
    if language and language not in manifest.translate:
        raise SpotkitError(f"job {job} was not submitted with --translate {language}; it has "
                           f"{', '.join(manifest.translate) or 'no translations'}")
    cues: list[SourceCue] = []
    missing = 0
    for ref in manifest.segments:
        try:
            transcript = store.get(result_key(task, ref.id))
            if language:
                key = translation_key(transcript, manifest.translator_model, language)
                transcript = store.get(translation_result_key(key))
            result = TranscriptResult.from_bytes(transcript, f"of segment {ref.index} ({ref.id[:12]})")
        except NotFound:
            missing += 1
            continue
        except BadResult as err:
            raise SpotkitError(f"job {job}: {err}; resubmit the media file (`spotkit submit`) and the agents "
                               "will redo that segment and replace it") from None
        spans = [(int(a), int(b)) for a, b in ref.spans]
        for cue in result.cues:
            if cue.text.strip():
                start = to_source_seconds(spans, cue.start)
                end = max(start, to_source_seconds(spans, cue.end))
                words = [[round(to_source_seconds(spans, float(w[0])), 3),  # type: ignore[arg-type]
                          round(to_source_seconds(spans, float(w[1])), 3), w[2]]  # type: ignore[arg-type]
                         for w in cue.words] if cue.words else None
                cues.append(SourceCue(round(start, 3), round(end, 3), cue.text.strip(), words))
    if missing:
        raise SpotkitError(f"job {job} is not complete: {missing} of {len(manifest.segments)} segments "
                           f"have no result yet; see `spotkit status {job}`")
    cues.sort(key=lambda c: (c.start, c.end))
    return manifest, cues
