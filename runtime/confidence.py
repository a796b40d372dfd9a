"""Flag segments whose transcript is probably not what was said: not English, or not speech.

An English-only model (``*.en``) always "detects" English with certainty and turns any language into
phonetic English, so the language it reports says nothing. The decoder's own signals do: Whisper
itself treats a window as failed when its average log-probability is below -1.0 or its text
compresses more than 2.4 times (a repetition loop), and as silence when its no-speech probability is
above 0.6 *and* the log-probability is that low (the thresholds of openai/whisper's ``transcribe``).

The batched pipeline scores a whole 30 s window at once, and a model that turns German into English
words is sure of its window: German through ``tiny.en`` scored -0.2 to -0.4, like English (-0.1 to
-0.4). Its *words* are not sure: the mean probability of a German window's words was 0.37–0.58,
of English windows' 0.81–0.99 (espeak-ng German, multilingual.mp3's German half; jfk, hotwords and
the English half; measured 2026-12-03). So a segment is flagged not English when its cues' mean word
probability, weighted by duration (loops left out: a loop is sure of itself), is below
`MIN_WORD_PROBABILITY`, or their log-probability below
Whisper's threshold; as a loop when any cue compresses too well. A multilingual model's detected
language is checked too: another language than the job asked for, or a detection less than
`MIN_LANGUAGE_PROBABILITY` sure.

Results from before these signals were kept (or from engines without them) are never flagged:
unknown is not low.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from runtime.errors import NotFound
from runtime.records import result_key
from runtime.segmenter import to_source_seconds
from runtime.store.base import ObjectStore
from runtime.work import BadResult, JobManifest, TranscriptResult

LOGPROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4
NO_SPEECH_THRESHOLD = 0.6
MIN_LANGUAGE_PROBABILITY = 0.5
MIN_WORD_PROBABILITY = 0.7


@dataclass(frozen=True)
class SegmentFlag:
    segment: str
    index: int
    start: float  # source seconds
    end: float
    kind: str  # not-speech | not-english | wrong-language | unsure-language | repetition
    reason: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def flag_result(result: TranscriptResult, model: str, language: str) -> list[tuple[str, str]]:
    """(kind, reason) for each way *result* looks untrustworthy; [] when it looks fine or is unknown."""
    flags: list[tuple[str, str]] = []
    timed = [(max(c.end - c.start, 0.01), c) for c in result.cues if c.avg_logprob is not None and c.text.strip()]
    if timed:
        total = sum(weight for weight, _ in timed)
        logprob = sum(weight * float(c.avg_logprob or 0.0) for weight, c in timed) / total
        silent = sum(weight for weight, c in timed if (c.no_speech_prob or 0.0) > NO_SPEECH_THRESHOLD) / total
        if logprob < LOGPROB_THRESHOLD and silent > 0.5:
            flags.append(("not-speech", f"no-speech probability above {NO_SPEECH_THRESHOLD} and average "
                                        f"log-probability {logprob:.2f} (below {LOGPROB_THRESHOLD})"))
        else:
            worded = [(weight, float(c.word_probability)) for weight, c in timed if c.word_probability is not None
                      and float(c.compression_ratio or 0.0) <= COMPRESSION_RATIO_THRESHOLD]  # a loop is sure of itself
            words = sum(w * p for w, p in worded) / sum(w for w, _ in worded) if worded else 1.0
            why = [f"average log-probability {logprob:.2f} (below {LOGPROB_THRESHOLD})"] \
                if logprob < LOGPROB_THRESHOLD else []
            why += [f"its words are {words:.0%} sure (below {MIN_WORD_PROBABILITY:.0%})"] \
                if words < MIN_WORD_PROBABILITY else []
            if why:
                english_only = model.endswith(".en")
                flags.append(("not-english" if english_only else "low-confidence", " and ".join(why)
                              + (f": probably not English, the only language {model} knows" if english_only
                                 else ": probably not the language it was taken for")))
        looping = max(float(c.compression_ratio or 0.0) for _, c in timed)
        if looping > COMPRESSION_RATIO_THRESHOLD:
            flags.append(("repetition", f"text compresses {looping:.1f} times (above "
                                        f"{COMPRESSION_RATIO_THRESHOLD}): the decoder looped"))
    probability = result.language_probability
    if probability is not None:
        if language and result.language and result.language != language:
            flags.append(("wrong-language", f"detected {result.language} ({probability:.0%}), the job asked "
                                            f"for {language}"))
        elif probability < MIN_LANGUAGE_PROBABILITY:
            flags.append(("unsure-language", f"detected {result.language} with only {probability:.0%} "
                                              "certainty"))
    return flags


def job_flags(store: ObjectStore, manifest: JobManifest) -> list[SegmentFlag]:
    """The flags of every segment of *manifest* that has its transcript (unreadable ones are skipped:
    `status` counts them and `fetch` names them)."""
    found: list[SegmentFlag] = []
    options = manifest.options
    for ref in manifest.segments:
        try:
            result = TranscriptResult.from_bytes(store.get(result_key(options.task, ref.id)))
        except (NotFound, BadResult):
            continue
        spans = [(int(a), int(b)) for a, b in ref.spans]
        start = to_source_seconds(spans, 0.0)
        end = to_source_seconds(spans, ref.speech_seconds)
        for kind, reason in flag_result(result, options.model, options.language):
            found.append(SegmentFlag(ref.id, ref.index, round(start, 3), round(end, 3), kind, reason))
    return found


def describe(flag: SegmentFlag) -> str:
    return (f"segment #{flag.index} ({_clock(flag.start)}–{_clock(flag.end)}) flagged {flag.kind}: "
            f"{flag.reason}")


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"
