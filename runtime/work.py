"""The work model: jobs, segments, queue items and results, with their content-derived ids.

A segment's id hashes its 16 kHz PCM and every setting that changes its output, so a result cached
under that id is valid wherever the same audio appears again. A job's id hashes the input file's
bytes and the job options, so submitting the same file twice creates no new work. All JSON written
here is canonical (sorted keys, fixed separators): the same content gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from runtime.errors import BadMessage, SpotkitError
from runtime.media import Pcm

TRANSCRIBE = "transcribe"
TRANSLATE = "translate"
TASKS = (TRANSCRIBE, TRANSLATE)
TRANSLATION_PROMPT_VERSION = 1
WORK_VERSION = 1


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class TaskOptions:
    """Settings that change a segment's output, and therefore its id."""

    task: str = TRANSCRIBE
    model: str = "tiny.en"
    language: str = ""  # "" = detect
    word_timestamps: bool = False
    revision: str = ""  # the model's content + decoding settings (`runtime.engines.revision`); "" = unpinned

    def as_dict(self) -> dict[str, object]:
        fields: dict[str, object] = asdict(self)
        for name in ("word_timestamps", "revision"):  # absent when unset, so ids made before them stay the same
            if not fields[name]:
                del fields[name]
        return fields


def segment_id(pcm: Pcm, options: TaskOptions) -> str:
    digest = hashlib.sha256(b"spotkit-segment-v1\0")
    digest.update(canonical_json(options.as_dict()))
    digest.update(pcm.samples.astype("<i2").tobytes())
    return digest.hexdigest()


def job_id(input_sha256: str, options: TaskOptions, segment_max_seconds: float,
           translate: tuple[str, ...] = (), translator_model: str = "") -> str:
    digest = hashlib.sha256(b"spotkit-job-v1\0")
    fields: dict[str, object] = {"input": input_sha256, "options": options.as_dict(),
                                 "segment_max_seconds": segment_max_seconds}
    if translate:  # absent for transcription-only jobs, so their ids stay what they were
        fields["translate"] = list(translate)
        fields["translator_model"] = translator_model
    digest.update(canonical_json(fields))
    return digest.hexdigest()[:24]


def translation_key(transcript: bytes, model: str, language: str) -> str:
    """A translation's id: the transcript's content, the model, the language, the prompt version."""
    digest = hashlib.sha256(b"spotkit-translation-v1\0")
    digest.update(canonical_json({"model": model, "language": language, "prompt": TRANSLATION_PROMPT_VERSION}))
    digest.update(transcript)
    return digest.hexdigest()


@dataclass(frozen=True)
class SegmentRef:
    id: str
    index: int
    spans: list[list[int]]  # [start, end) in source samples, concatenated to form the audio
    speech_seconds: float


# A manifest's states. `spotkit submit` writes a *reading* one (the job's id and options, the segments
# found so far) before it enqueues the first segment, rewrites it as it finds more, and writes the
# *complete* one at the end; *failed* if the media turned out corrupt halfway (see `error`). Agents
# work a job's segments while it is still reading; status, fetch and the agents' translation fan-out
# read all three.
READING, COMPLETE, FAILED = "reading", "complete", "failed"


@dataclass(frozen=True)
class JobManifest:
    job: str
    source: str
    source_sha256: str
    duration_seconds: float
    speech_seconds: float
    options: TaskOptions
    segment_max_seconds: float
    segments: list[SegmentRef] = field(default_factory=list)
    translate: list[str] = field(default_factory=list)  # target languages
    translator_model: str = ""
    state: str = COMPLETE  # manifests from before streaming submits were written complete, at the end
    error: str = ""  # why a failed one failed

    @property
    def complete(self) -> bool:
        """Every segment of the file is listed (a reading manifest lists those found so far)."""
        return self.state == COMPLETE

    def to_bytes(self) -> bytes:
        return canonical_json(asdict(self))

    @staticmethod
    def from_bytes(data: bytes) -> JobManifest:
        raw = json.loads(data)
        raw["options"] = TaskOptions(**raw["options"])
        raw["segments"] = [SegmentRef(**s) for s in raw["segments"]]
        manifest = JobManifest(**raw)
        if manifest.state not in (READING, COMPLETE, FAILED):
            raise ValueError(f"unknown state {manifest.state!r}")
        return manifest

    def previous(self, segment: str) -> str | None:
        """The segment before *segment* in the file (translation context)."""
        ids = [s.id for s in self.segments]
        index = ids.index(segment) if segment in ids else 0
        return ids[index - 1] if index > 0 else None


@dataclass(frozen=True)
class WorkItem:
    """One queue message: a segment to run one task on. Small (≈300 bytes), far below 64 KiB."""

    job: str
    segment: str
    options: TaskOptions
    seconds: float
    deadline_at: float = 0.0  # epoch seconds; 0 = none given (older messages)
    priority: str = "normal"
    v: int = WORK_VERSION

    def encode(self) -> str:
        return canonical_json(asdict(self)).decode()

    @staticmethod
    def decode(body: str) -> WorkItem:
        """Parse a queue message; `BadMessage` (poison at once) for anything that is not a work item."""
        try:
            raw = json.loads(body)
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            if raw.get("v") != WORK_VERSION:
                raise ValueError(f"unsupported version {raw.get('v')!r}")
            options = raw["options"]
            if not isinstance(options, dict) or set(options) - {f.name for f in fields(TaskOptions)}:
                raise ValueError(f"options {options!r} are not task options")
            for name, kind in (("task", str), ("model", str), ("language", str), ("word_timestamps", bool),
                               ("revision", str)):
                if name in options and not isinstance(options[name], kind):
                    raise ValueError(f"option {name} = {options[name]!r} is not a {kind.__name__}")
            opts = TaskOptions(**options)
            if opts.task not in TASKS:
                raise ValueError(f"unknown task {opts.task!r}")
            seconds = raw["seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 1e6:
                raise ValueError(f"seconds = {seconds!r} is not a segment length")
            job, segment = raw["job"], raw["segment"]
            if not isinstance(job, str) or not isinstance(segment, str):
                raise ValueError("job and segment must be strings")
            if len(segment) != 64 or any(c not in "0123456789abcdef" for c in segment):
                raise ValueError(f"segment id {segment!r} is not a sha256 hex digest")
            deadline_at, priority = raw.get("deadline_at", 0.0), raw.get("priority", "normal")
            if isinstance(deadline_at, bool) or not isinstance(deadline_at, int | float) \
                    or not 0 <= deadline_at < 1e11:
                raise ValueError(f"deadline_at = {deadline_at!r} is not a time")
            if priority not in ("high", "normal", "low"):
                raise ValueError(f"priority = {priority!r} is not high, normal or low")
            return WorkItem(job, segment, opts, float(seconds), float(deadline_at), priority)
        except KeyError as err:
            problem = f"missing field {err.args[0]!r}"
        except (ValueError, TypeError, RecursionError) as err:
            problem = str(err) or type(err).__name__
        preview = body[:80].replace("\n", " ")
        raise BadMessage(f"malformed work item ({problem}): {preview!r}")


class BadResult(SpotkitError):
    """A stored result cannot be trusted (not a result, truncated, or its checksum does not match)."""


@dataclass(frozen=True)
class Cue:
    start: float  # seconds from the start of the segment's audio
    end: float
    text: str
    words: list[list[object]] | None = None  # [start, end, word] when word timestamps were asked for
    # The decoder's own confidence (faster-whisper; None from engines that give none): `runtime.confidence`.
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None
    word_probability: float | None = None  # the mean of its words' probabilities (with word timestamps)


@dataclass(frozen=True)
class TranscriptResult:
    segment: str
    model: str
    engine: str
    language: str
    cues: list[Cue]
    tokens: int = 0  # tokens the model generated: the output side of the usage record
    language_probability: float | None = None  # the detected language's, when a multilingual model detected it

    @property
    def text(self) -> str:
        return " ".join(c.text.strip() for c in self.cues).strip()

    def to_bytes(self) -> bytes:
        """Canonical JSON sealed with the SHA-256 of its own content, so a truncated or damaged copy
        (a node disk cut off mid-write, a flipped bit) is recognised and never trusted."""
        body = self.as_json()
        return canonical_json({**body, "sha256": hashlib.sha256(canonical_json(body)).hexdigest()})

    def translated(self, language: str, model: str, engine: str, texts: list[str],
                   tokens: int) -> TranscriptResult:
        """The same cues, in another language (one translated cue per transcribed cue)."""
        cues = [Cue(c.start, c.end, t) for c, t in zip(self.cues, texts, strict=True)]
        return TranscriptResult(self.segment, model, engine, language, cues, tokens)

    @staticmethod
    def from_bytes(data: bytes, where: str = "") -> TranscriptResult:
        """Parse and verify a stored result; `BadResult` if it is not one or its seal does not match."""
        label = f"result {where}".strip()
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            seal = raw.pop("sha256", None)
            if seal != hashlib.sha256(canonical_json(raw)).hexdigest():
                raise ValueError("its checksum does not match its content" if seal else "it has no checksum")
            cues = [Cue(float(c["start"]), float(c["end"]), str(c["text"]), c.get("words"),
                        *(None if c.get(k) is None else float(c[k]) for k in _CONFIDENCE)) for c in raw["cues"]]
            probability = raw.get("language_probability")
            return TranscriptResult(str(raw["segment"]), str(raw["model"]), str(raw["engine"]),
                                    str(raw["language"]), cues, int(raw.get("tokens", 0)),
                                    None if probability is None else float(probability))
        except (ValueError, KeyError, TypeError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
            raise BadResult(f"{label} is corrupt ({err or type(err).__name__})") from None

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        for cue in data["cues"]:  # absent when unset: results made before these fields keep their bytes
            for name in ("words", *_CONFIDENCE):
                if cue[name] is None:
                    del cue[name]
        if data["language_probability"] is None:
            del data["language_probability"]
        return data


_CONFIDENCE = ("avg_logprob", "compression_ratio", "no_speech_prob", "word_probability")
