"""Submit media as segments, report a job's progress, and assemble its results in source time."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runtime.audio_codec import encode_flac
from runtime.errors import MediaError, NotFound, SpotkitError
from runtime.languages import check_spoken, check_target
from runtime.media import SAMPLE_RATE, decode_bytes, read_media
from runtime.queue.base import WorkQueue
from runtime.records import (
    BACKLOG,
    BacklogRecord,
    BadRecord,
    PoisonRecord,
    QueuedRecord,
    audio_key,
    backlog_key,
    dump,
    job_key,
    load,
    poison_key,
    queued_key,
    read_heartbeats,
    result_key,
    translation_result_key,
)
from runtime.schedule import deadline_for
from runtime.segmenter import find_speech, pack_spans, to_source_seconds
from runtime.store.base import ObjectStore
from runtime.work import (
    TRANSLATE,
    BadResult,
    JobManifest,
    SegmentRef,
    TaskOptions,
    TranscriptResult,
    WorkItem,
    job_id,
    segment_id,
    translation_key,
)

JOB_ID = re.compile(r"^[0-9a-f]{24}$")

# progress(stage, done, total): stages are "decode", "speech", "upload".
Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


# A queued marker older than this is taken as lost (a wiped or recreated queue): resubmitting enqueues again.
QUEUED_MARKER_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class SubmitReport:
    job: str
    resubmitted: bool
    segments: int
    duration_seconds: float
    speech_seconds: float
    enqueued: int = 0  # messages sent now (an unfinished segment already queued for this job is not sent again)

    @property
    def silence_share(self) -> float:
        if self.duration_seconds <= 0:
            return 0.0
        return max(0.0, 1.0 - self.speech_seconds / self.duration_seconds)


def submit(path: Path, queue: WorkQueue, store: ObjectStore, options: TaskOptions,
           segment_max_seconds: float, progress: Progress = _no_progress, translate: tuple[str, ...] = (),
           translator_model: str = "", priority: str = "normal", deadline: str = "") -> SubmitReport:
    """Decode, find speech, upload segment audio, write the manifest, then enqueue.

    Nothing is enqueued unless every earlier step succeeded, so bad input leaves no work behind.
    Resubmitting the same file and options yields the same job id and the same segment ids; the
    agents then answer every segment from the cache.
    """
    check_spoken(options.language, options.model)
    for language in translate:
        check_target(language)
    submitted_at = time.time()
    deadline_at = deadline_for(submitted_at, priority, deadline)  # refuses a bad one before any work
    progress("decode", 0, 1)
    data = read_media(path)
    pcm = decode_bytes(data, name=str(path))
    data_hash = hashlib.sha256(data).hexdigest()
    job = job_id(data_hash, options, segment_max_seconds, translate, translator_model)
    progress("decode", 1, 1)

    progress("speech", 0, 1)
    plans = pack_spans(find_speech(pcm, segment_max_seconds), segment_max_seconds)
    progress("speech", 1, 1)
    if not plans:
        raise MediaError(f"{path}: no speech found in {pcm.seconds:.1f} s of audio; nothing to do")

    refs: list[SegmentRef] = []
    for index, plan in enumerate(plans):
        audio = plan.audio(pcm)
        seg = segment_id(audio, options)
        if not store.exists(audio_key(seg)):
            store.put_if_absent(audio_key(seg), encode_flac(audio))
        refs.append(SegmentRef(seg, index, [list(span) for span in plan.spans],
                               round(plan.samples / SAMPLE_RATE, 3)))
        progress("upload", index + 1, len(plans))

    manifest = JobManifest(
        job=job, source=path.name, source_sha256=data_hash,
        duration_seconds=round(pcm.seconds, 3),
        speech_seconds=round(sum(r.speech_seconds for r in refs), 3),
        options=options, segment_max_seconds=segment_max_seconds, segments=refs,
        translate=list(translate), translator_model=translator_model if translate else "",
    )
    resubmitted = not store.put_if_absent(job_key(job), manifest.to_bytes())
    if resubmitted and store.get(job_key(job)) != manifest.to_bytes():
        store.put(job_key(job), manifest.to_bytes())  # a damaged manifest: the same job, written again
    now = time.time()
    unique: dict[str, SegmentRef] = {}
    for ref in refs:
        unique.setdefault(ref.id, ref)  # a segment said twice in one file is enqueued once
    needed = [ref for ref in unique.values() if _needs_message(store, job, ref.id, options.task, now)]
    # One call for all: SQS sends 10 a call, a packed queue (`?pack=K`) K items a message.
    queue.send_many([WorkItem(job, ref.id, options, ref.speech_seconds, round(deadline_at, 3), priority).encode()
                     for ref in needed])
    for ref in needed:
        # After the sends: a crash in between can at worst enqueue a duplicate later, never lose work.
        store.put(queued_key(ref.id), dump(QueuedRecord(job, ref.id, now)))
    enqueued, enqueued_seconds = len(needed), sum(ref.speech_seconds for ref in needed)
    if enqueued:  # what the controller plans against: this submission's work and when it is due
        store.put_if_absent(backlog_key(job, int(submitted_at * 1000)), dump(BacklogRecord(
            job, submitted_at, round(deadline_at, 3), priority, enqueued, round(enqueued_seconds, 3))))
    return SubmitReport(job, resubmitted, len(refs), manifest.duration_seconds, manifest.speech_seconds, enqueued)


def _needs_message(store: ObjectStore, job: str, segment: str, task: str, now: float) -> bool:
    """Whether submitting *job* must enqueue *segment*.

    A finished segment is enqueued again: the agent answers it from the cache (no engine work) and
    fans out the job's translations. An unfinished one is not, if it is already queued for this job —
    unless it was poisoned meanwhile (a resubmit is the retry) or its marker is too old to trust.
    """
    if store.exists(result_key(task, segment)):
        return True
    if store.exists(poison_key(segment)):
        store.delete(poison_key(segment))  # queued again: `status` shows it queued, not poisoned
        return True
    try:
        marker = load(QueuedRecord, store.get(queued_key(segment)), queued_key(segment))
    except (NotFound, BadRecord):
        return True
    return marker.job != job or now - marker.at > QUEUED_MARKER_TTL_SECONDS


def job_media(store: ObjectStore, jobs: set[str]) -> dict[str, tuple[float, float]]:
    """(media seconds, speech seconds) of each job whose manifest can be read; the others are left out
    (a job deleted since, or work from before manifests were kept) and count no silence."""
    media = {}
    for job in sorted(jobs):
        try:
            manifest = load_manifest(store, job)
        except SpotkitError:
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

    @property
    def transcribed(self) -> bool:
        """Every segment has its transcript: `fetch` of the transcript works, whatever the translations do."""
        return self.done == self.total

    def translated_into(self, language: str) -> bool:
        return self.translated.get(language, -1) == self.total

    @property
    def complete(self) -> bool:
        return self.transcribed and all(n == self.total for n in self.translated.values())

    @property
    def finished(self) -> bool:
        """Nothing left to wait for: every segment and translation is done or poisoned."""
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
                "complete": self.complete, "deadline_at": self.deadline_at, "priority": self.priority}


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
    status = JobStatus(job, manifest.source, len(manifest.segments), translated=dict.fromkeys(manifest.translate, 0))
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
    Refuses an incomplete job."""
    manifest = load_manifest(store, job)
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
