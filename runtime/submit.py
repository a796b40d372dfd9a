"""Submit media as segments, streaming: agents start on a film while it is still being read.

The timeline of one submit (a 2-hour film, default settings)::

    hash      read the file once, 1 MiB at a time: its SHA-256 is the job id (bytes, no decoding)
    check     demux its audio packets: not media, no audio, truncated -> refused, nothing written
    read      decode 10 s at a time -> Silero VAD (state carried across chunks: runtime/vad_stream.py)
              -> pack spans into segments -> upload each segment's FLAC as soon as it is packed
    flush     at the first segment, then at most every FLUSH_SECONDS: write the manifest (state
              `reading`, the segments so far), then enqueue the new segments (and a backlog record
              for the controller); an agent can finish segment 0 while the file is still read
    end       the manifest, complete; or `failed` with the reason if decoding broke halfway

Memory is a few chunks (runtime/vad_stream.py: at most one 32 s VAD batch) whatever the length.
The segments are the same as reading the whole file at once gives (tests/runtime/test_streaming_submit.py),
so their ids, the cache and resubmits behave as they always did.

**Interrupted and run again** (a crash, Ctrl-C): the file hashes to the same job; each segment it
finds again is already in the store (not uploaded again) and already queued for this job (not
enqueued again, `_needs_message`); the manifest picks up where it was and is completed at the end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from runtime.audio_codec import encode_flac
from runtime.errors import MediaError, NotFound
from runtime.languages import check_spoken, check_target
from runtime.media import SAMPLE_RATE, Pcm
from runtime.media_stream import check_media, hash_file, stream_pcm
from runtime.queue.base import WorkQueue
from runtime.records import (
    BacklogRecord,
    BadRecord,
    QueuedRecord,
    audio_key,
    backlog_key,
    dump,
    job_key,
    load,
    poison_key,
    queued_key,
    result_key,
)
from runtime.schedule import deadline_for
from runtime.segmenter import SegmentPlan, Span, SpanPacker
from runtime.store.base import ObjectStore
from runtime.vad_stream import SpeechStream
from runtime.work import (
    COMPLETE,
    FAILED,
    READING,
    JobManifest,
    SegmentRef,
    TaskOptions,
    WorkItem,
    job_id,
    segment_id,
)

# A queued marker older than this is taken as lost (a wiped or recreated queue): resubmitting enqueues again.
QUEUED_MARKER_TTL_SECONDS = 24 * 3600
# The longest a found segment waits to be enqueued (each flush rewrites the manifest: one PUT).
FLUSH_SECONDS = 2.0
CHUNK_SECONDS = 10.0


@dataclass(frozen=True)
class SubmitProgress:
    """Where a submit is: *stage* is ``hash`` (bytes hashed), ``check`` or ``read`` (decoding)."""

    stage: str
    bytes_done: int
    bytes_total: int
    media_seconds: float = 0.0  # decoded so far
    media_total: float = 0.0  # what the container declares (0: it does not say)
    segments: int = 0  # found so far
    enqueued: int = 0


Progress = Callable[[SubmitProgress], None]


def _no_progress(event: SubmitProgress) -> None:
    return None


@dataclass(frozen=True)
class SubmitReport:
    job: str
    resubmitted: bool  # the job was submitted before (complete, or interrupted: see `resumed`)
    segments: int
    duration_seconds: float
    speech_seconds: float
    enqueued: int = 0  # messages sent now (an unfinished segment already queued for this job is not sent again)
    uploaded: int = 0  # segment audio written now (the rest was in the store already)
    resumed: bool = False  # an interrupted submit of this job was picked up

    @property
    def silence_share(self) -> float:
        if self.duration_seconds <= 0:
            return 0.0
        return max(0.0, 1.0 - self.speech_seconds / self.duration_seconds)


def submit(path: Path, queue: WorkQueue, store: ObjectStore, options: TaskOptions,
           segment_max_seconds: float, progress: Progress = _no_progress, translate: tuple[str, ...] = (),
           translator_model: str = "", priority: str = "normal", deadline: str = "",
           clock: Callable[[], float] = time.time) -> SubmitReport:
    """Hash, check, then decode, segment, upload and enqueue as the file is read (see the module).

    Bad input found before decoding leaves nothing behind; so does a file with no speech. Resubmitting
    the same file and options yields the same job id and the same segment ids; the agents then
    answer every segment from the cache.
    """
    check_spoken(options.language, options.model)
    for language in translate:
        check_target(language)
    submitted_at = clock()
    deadline_at = deadline_for(submitted_at, priority, deadline)  # refuses a bad one before any work
    digest, size = hash_file(path, lambda done, total: progress(SubmitProgress("hash", done, total)))
    progress(SubmitProgress("check", size, size))
    declared = check_media(path)
    job = job_id(digest, options, segment_max_seconds, translate, translator_model)
    run = _Run(queue, store, options, _existing(store, job), JobManifest(
        job=job, source=path.name, source_sha256=digest, duration_seconds=0.0, speech_seconds=0.0,
        options=options, segment_max_seconds=segment_max_seconds, translate=list(translate),
        translator_model=translator_model if translate else "", state=READING),
        submitted_at, round(deadline_at, 3), priority, clock)
    stream, packer = SpeechStream(segment_max_seconds), SpanPacker(segment_max_seconds)
    held: list[tuple[Span, np.ndarray]] = []  # found spans whose audio a segment still needs
    read = 0

    def found(spans: list[tuple[Span, np.ndarray]]) -> None:
        for span, audio in spans:
            held.append((span, audio))
            for plan in packer.add(span):
                run.add(plan, _plan_audio(plan, held))
                held[:] = [(s, a) for s, a in held if s[1] > plan.spans[-1][1]]
                run.flush(read, final=False)  # the VAD hands out a batch's spans at once: enqueue as they go

    try:
        for chunk, position in stream_pcm(path, CHUNK_SECONDS):
            read += len(chunk)
            found(stream.feed(chunk))
            progress(SubmitProgress("read", position, size, read / SAMPLE_RATE, declared,
                                    len(run.refs), run.enqueued))
        found(stream.finish())
        for plan in packer.finish():
            run.add(plan, _plan_audio(plan, held))
    except MediaError as err:
        run.fail(read, str(err))
        raise
    if not run.refs:
        raise MediaError(f"{path}: no speech found in {read / SAMPLE_RATE:.1f} s of audio; nothing to do")
    manifest = run.flush(read, final=True)
    progress(SubmitProgress("read", size, size, read / SAMPLE_RATE, declared, len(run.refs), run.enqueued))
    return SubmitReport(job, run.existing is not None, len(run.refs), manifest.duration_seconds,
                        manifest.speech_seconds, run.enqueued, run.uploaded,
                        run.existing is not None and not run.existing.complete)


def _plan_audio(plan: SegmentPlan, held: list[tuple[Span, np.ndarray]]) -> Pcm:
    """A segment's samples from the spans found (a piece of a span cut to fit is a slice of it)."""
    parts = []
    for start, end in plan.spans:
        span, audio = next((s, a) for s, a in held if s[0] <= start and end <= s[1])
        parts.append(audio[start - span[0]:end - span[0]])
    return Pcm(np.concatenate(parts))


def _existing(store: ObjectStore, job: str) -> JobManifest | None:
    """This job's manifest from an earlier submit (None if there is none, or it is damaged)."""
    try:
        return JobManifest.from_bytes(store.get(job_key(job)))
    except NotFound:
        return None
    except (ValueError, KeyError, TypeError, RecursionError):
        return None  # rewritten by this submit


class _Run:
    """One submit's segments: uploaded as found, in the manifest before they are enqueued."""

    def __init__(self, queue: WorkQueue, store: ObjectStore, options: TaskOptions, existing: JobManifest | None,
                 manifest: JobManifest, submitted_at: float, deadline_at: float, priority: str,
                 clock: Callable[[], float]) -> None:
        self.queue, self.store, self.options, self.existing = queue, store, options, existing
        self.manifest, self.submitted_at, self.deadline_at = manifest, submitted_at, deadline_at
        self.priority, self.clock = priority, clock
        self.refs: list[SegmentRef] = []
        self.new: list[SegmentRef] = []  # in no manifest written yet, so not enqueued yet
        self.seen: set[str] = set()  # segment ids this run has considered for enqueueing
        self.enqueued = self.uploaded = 0
        self.written = False  # a manifest of this run is in the store
        self.last_flush = -math.inf
        self.last_backlog_ms = 0

    def add(self, plan: SegmentPlan, audio: Pcm) -> None:
        seg = segment_id(audio, self.options)
        if not self.store.exists(audio_key(seg)) and self.store.put_if_absent(audio_key(seg), encode_flac(audio)):
            self.uploaded += 1
        self.new.append(SegmentRef(seg, len(self.refs), [list(span) for span in plan.spans],
                                   round(plan.samples / SAMPLE_RATE, 3)))
        self.refs.append(self.new[-1])

    def _manifest(self, read: int, state: str, error: str = "") -> JobManifest:
        return replace(self.manifest, duration_seconds=round(read / SAMPLE_RATE, 3),
                       speech_seconds=round(sum(r.speech_seconds for r in self.refs), 3),
                       segments=list(self.refs), state=state, error=error)

    def flush(self, read: int, final: bool) -> JobManifest:
        """Write the manifest, then enqueue the segments it lists for the first time (at the first
        segment found, then at most every FLUSH_SECONDS, and at the end)."""
        now = self.clock()
        manifest = self._manifest(read, COMPLETE if final else READING)
        if not final and (not self.new or now - self.last_flush < FLUSH_SECONDS):
            return manifest
        self._write(manifest)
        self.last_flush = now
        needed: list[SegmentRef] = []
        for ref in self.new:
            if ref.id in self.seen:  # a segment said twice in one file is enqueued once
                continue
            self.seen.add(ref.id)
            if _needs_message(self.store, manifest.job, ref.id, self.options.task, self.clock()):
                needed.append(ref)
        # One call for the flush: SQS sends 10 a call, a packed queue (`?pack=K`) K items a message.
        self.queue.send_many([WorkItem(manifest.job, ref.id, self.options, ref.speech_seconds, self.deadline_at,
                                       self.priority).encode() for ref in needed])
        now = self.clock()
        for ref in needed:
            # After the sends: a crash in between can at worst enqueue a duplicate later, never lose work.
            self.store.put(queued_key(ref.id), dump(QueuedRecord(manifest.job, ref.id, now)))
        enqueued, seconds = len(needed), sum(ref.speech_seconds for ref in needed)
        self.new = []
        self.enqueued += enqueued
        if enqueued:  # what the controller plans against: this flush's work and when it is due
            ms = self.last_backlog_ms = max(int(now * 1000), self.last_backlog_ms + 1)
            self.store.put_if_absent(backlog_key(manifest.job, ms), dump(BacklogRecord(
                manifest.job, self.submitted_at, self.deadline_at, self.priority, enqueued, round(seconds, 3))))
        return manifest

    def _write(self, manifest: JobManifest) -> None:
        key, data = job_key(manifest.job), manifest.to_bytes()
        if self.existing is not None and self.existing.complete:
            # A resubmit: the complete manifest stays until this run's is complete too (and then is
            # rewritten only if it differs: a damaged one, or one from before a format change).
            if manifest.complete and self.existing.to_bytes() != data:
                self.store.put(key, data)
            return
        self.store.put(key, data)
        self.written = True

    def fail(self, read: int, reason: str) -> None:
        """Decoding broke after segments were queued: say so in the manifest (status shows why), which
        lists the segments queued (those found since the last flush are left out, as never enqueued)."""
        if self.written:
            self.refs = self.refs[:len(self.refs) - len(self.new)]
            self._write(self._manifest(read, FAILED, reason))


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
