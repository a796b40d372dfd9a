"""Usage at the scale of a fleet: a node-day's flushes compacted into one object, and the day summed.

A busy T4 flushes a usage object every few seconds and writes ~6,000 records an hour, so a 100-node
month is hundreds of thousands of objects and ~4×10⁸ records: listing and parsing them for a report or
for the API budget on every controller round does not scale. Compaction (`compact_day`, run by the
controller on each UTC day's first round for the day before, and by ``spotkit usage compact``) does two
things for one day:

1. each node's flushes are merged into one gzip JSON-lines object named after the newest flush it
   holds (``<stem>.compacted.jsonl.gz``); the flushes it merged are then deleted. The raw records are
   kept — only their packaging changes — and every raw reader (`read_usage`) reads a compacted object
   and the flushes newer than it, and skips the older ones a crash may have left before their delete;
2. the day is summed into one `UsageRollup` (`UsageTotal` rows per job, task, engine, model, path and
   outcome: no node dimension, since a job's segments spread over the whole fleet), with each node's
   coverage. `read_usage_totals` uses the rollup only while it covers exactly every node's newest
   compacted object, and adds whatever was flushed after them; otherwise it reads the day raw.

So a rollup can be stale or missing and the answer is still the raw one; it is never trusted past what
it covers. Order of writes: compacted object, rollup, deletes — a crash anywhere leaves readers right.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from runtime.errors import NotFound
from runtime.records.codec import BadRecord, dump, load, load_lines
from runtime.records.keys import usage_compacted_key, usage_key_parts, usage_prefix, usage_rollup_key
from runtime.records.kinds import JobMedia, RollupCoverage, UsageRecord, UsageRollup, UsageTotal
from runtime.store.base import ObjectStore

log = logging.getLogger("spotkit.records")


Key = tuple[str, str, str, str, str, str]  # job, task, engine, model, path, outcome


def totals_of(records: Iterable[UsageRecord], day: str = "") -> list[UsageTotal]:
    """Records summed per (job, task, engine, model, path, outcome); *day* labels the rows ("" for
    records of several days). Pure: the one place usage is summed."""
    sums: dict[Key, list[float]] = {}
    for r in records:
        row = sums.setdefault((r.job, r.task, r.engine, r.model, r.path, r.outcome), [0, 0.0, 0, 0, 0.0])
        row[0] += 1
        row[1] += r.audio_seconds
        row[2] += r.tokens_in
        row[3] += r.tokens_out
        row[4] += r.gpu_seconds
    return _rows(sums, day)


def merged(totals: Iterable[UsageTotal], day: str = "") -> list[UsageTotal]:
    """Rows with the same key added together (a rollup plus what was flushed after it)."""
    sums: dict[Key, list[float]] = {}
    for t in totals:
        row = sums.setdefault((t.job, t.task, t.engine, t.model, t.path, t.outcome), [0, 0.0, 0, 0, 0.0])
        row[0] += t.records
        row[1] += t.audio_seconds
        row[2] += t.tokens_in
        row[3] += t.tokens_out
        row[4] += t.gpu_seconds
    return _rows(sums, day)


def _rows(sums: dict[Key, list[float]], day: str) -> list[UsageTotal]:
    return [UsageTotal(day, job, task, engine, model, path, outcome, int(n), audio, int(t_in), int(t_out), gpu)
            for (job, task, engine, model, path, outcome), (n, audio, t_in, t_out, gpu) in sorted(sums.items())]


@dataclass
class _NodeDay:
    """One node's usage keys of one day, as listed: its newest compacted object and the flushes after it."""

    compacted: str = ""  # the key of the newest compacted object ("" when none)
    through: str = ""  # its stem
    flushes: list[str] | None = None  # every raw flush key, oldest first
    stale: list[str] | None = None  # older compacted objects and flushes it already holds

    def newer(self) -> list[str]:
        return [k for k in self.flushes or [] if not self.through or _stem(k) > self.through]

    def covered(self) -> list[str]:
        return [k for k in self.flushes or [] if self.through and _stem(k) <= self.through] + (self.stale or [])


def _stem(key: str) -> str:
    parts = usage_key_parts(key)
    return parts[2] if parts else ""


def _list_days(store: ObjectStore, day: str | None) -> dict[str, dict[str, _NodeDay]]:
    """day -> node -> its keys, from one listing."""
    days: dict[str, dict[str, _NodeDay]] = {}
    for key in store.list(usage_prefix(day)):
        parts = usage_key_parts(key)
        if parts is None:
            continue
        d, node, stem, compacted = parts
        entry = days.setdefault(d, {}).setdefault(node, _NodeDay(flushes=[], stale=[]))
        if not compacted:
            assert entry.flushes is not None
            entry.flushes.append(key)
        elif stem > entry.through:
            if entry.compacted:
                assert entry.stale is not None
                entry.stale.append(entry.compacted)
            entry.compacted, entry.through = key, stem
        else:
            assert entry.stale is not None
            entry.stale.append(key)
    return days


def _read_object(store: ObjectStore, key: str) -> tuple[bytes, list[UsageRecord]]:
    """The JSON lines of one usage object (a flush, or a compacted one, unzipped) and its records; an
    unreadable one is logged and skipped (nothing), so one corrupt object never hides the rest."""
    try:
        data = store.get(key)
        if key.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as err:
                raise BadRecord(f"compacted usage at {key} is not gzip ({err})") from None
        records = load_lines(UsageRecord, data, key)
    except (BadRecord, NotFound) as err:
        log.warning("event=record-skipped key=%s error=%r", key, str(err))
        return b"", []
    return (data if not data or data.endswith(b"\n") else data + b"\n"), records


def _read_records(store: ObjectStore, key: str) -> list[UsageRecord]:
    return _read_object(store, key)[1]


def _node_records(store: ObjectStore, entry: _NodeDay) -> list[UsageRecord]:
    keys = ([entry.compacted] if entry.compacted else []) + entry.newer()
    return [r for key in keys for r in _read_records(store, key)]


def read_usage(store: ObjectStore, day: str | None = None) -> list[UsageRecord]:
    """All raw usage records (or one UTC day's): compacted objects and the flushes after them."""
    return [r for _, nodes in sorted(_list_days(store, day).items())
            for _, entry in sorted(nodes.items()) for r in _node_records(store, entry)]


def read_rollup(store: ObjectStore, day: str) -> UsageRollup | None:
    key = usage_rollup_key(day)
    try:
        return load(UsageRollup, store.get(key), key)
    except NotFound:
        return None
    except BadRecord as err:
        log.warning("event=record-skipped key=%s error=%r (its raw usage is read instead)", key, str(err))
        return None


def _covers(rollup: UsageRollup | None, nodes: dict[str, _NodeDay]) -> bool:
    """Whether *rollup* holds exactly every listed node's newest compacted object."""
    if rollup is None:
        return False
    covered = {c.node: c.through for c in rollup.covered}
    compacted = {node: entry.through for node, entry in nodes.items() if entry.compacted}
    return covered == compacted


# (jobs) -> {job: (media seconds, speech seconds)} for those whose manifest is complete: the job layer's
# reader (`runtime.jobs.job_media`), injected so that records stay below jobs.
MediaReader = Callable[[set[str]], dict[str, tuple[float, float]]]


def read_usage_day(store: ObjectStore, day: str) -> tuple[list[UsageTotal], dict[str, tuple[float, float]]]:
    """One UTC day's usage summed — its rollup plus the flushes after what it covers, or the raw records
    when there is no rollup or it does not cover what the listing shows — and the media seconds of the
    jobs the rollup knows (the caller reads the other jobs' manifests)."""
    nodes = _list_days(store, day).get(day, {})
    if not nodes:
        return [], {}
    rollup = read_rollup(store, day)
    if rollup is not None and _covers(rollup, nodes):
        media = {m.job: (m.media_seconds, m.speech_seconds) for m in rollup.media}
        later = [r for _, entry in sorted(nodes.items()) for key in entry.newer() for r in _read_records(store, key)]
        return (merged([*rollup.totals, *totals_of(later, day)], day) if later else rollup.totals), media
    return totals_of((r for _, entry in sorted(nodes.items()) for r in _node_records(store, entry)), day), {}


def read_usage_totals(store: ObjectStore, day: str) -> list[UsageTotal]:
    """One UTC day's usage summed (`read_usage_day` without the media)."""
    return read_usage_day(store, day)[0]


@dataclass(frozen=True)
class CompactResult:
    day: str
    nodes: int
    records: int
    merged_objects: int  # flushes (and older compacted objects) merged and deleted
    rows: int  # the rollup's rows


def compact_day(store: ObjectStore, day: str, clock: Callable[[], float] = time.time,
                media: MediaReader | None = None) -> CompactResult | None:
    """Compact one UTC day: merge each node's flushes, write the day's rollup, delete what was merged.
    With *media*, the rollup also keeps each transcribed job's media seconds (read once, here, rather
    than by every report). Incremental (a rollup that covers the day's compacted objects is added to,
    not recomputed) and idempotent; None when the day has no usage."""
    nodes = _list_days(store, day).get(day, {})
    if not nodes:
        return None
    before = read_rollup(store, day)
    incremental = before is not None and _covers(before, nodes)
    known = {c.node: c for c in before.covered} if before is not None and incremental else {}
    coverage: list[RollupCoverage] = []
    totals: list[UsageTotal] = list(before.totals) if before is not None and incremental else []
    doomed: list[str] = []
    records = 0
    for node, entry in sorted(nodes.items()):
        newer = entry.newer()
        doomed += entry.covered()
        if not newer and node in known:
            coverage.append(known[node])  # nothing new since the last compaction: its rows stand, unread
            records += known[node].records
            continue
        keys = ([entry.compacted] if entry.compacted else []) + newer
        read = [_read_object(store, key) for key in keys]  # the lines as written: checked, not re-encoded
        rows = [r for _, records in read for r in records]
        fresh = rows if not incremental or not entry.compacted else [r for _, records in read[1:] for r in records]
        through = max((_stem(k) for k in newer), default=entry.through)
        if newer:
            body = b"".join(lines for lines, _ in read)
            store.put(usage_compacted_key(day, node, through), gzip.compress(body, compresslevel=1, mtime=0))
            doomed += newer + ([entry.compacted] if entry.compacted else [])
        coverage.append(RollupCoverage(node, through, len(rows)))
        totals += totals_of(fresh, day)
        records += len(rows)
    summed = merged(totals, day)
    had = {m.job: m for m in before.media} if before is not None else {}
    jobs = {t.job for t in summed if t.outcome == "done" and t.task == "transcribe"}
    found = media(jobs - set(had)) if media is not None else {}
    kept = [had[job] if job in had else JobMedia(job, *found[job]) for job in sorted(jobs)
            if job in had or job in found]
    rollup = UsageRollup(day, coverage, summed, clock(), kept)
    store.put(usage_rollup_key(day), dump(rollup))
    for key in doomed:
        store.delete(key)
    return CompactResult(day, len(nodes), records, len(doomed), len(rollup.totals))
