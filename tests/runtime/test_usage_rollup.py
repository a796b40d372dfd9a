"""Usage compaction and rollups: the sums and the raw records read the same before and after, whatever
was flushed late or left behind by a crash, and a rollup is never trusted past what it covers."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from runtime.records import (
    USAGE_ROLLUPS,
    UsageRecord,
    UsageTotal,
    compact_day,
    dump,
    read_rollup,
    read_usage,
    read_usage_day,
    read_usage_totals,
    totals_of,
    usage_key,
    usage_prefix,
    usage_rollup_key,
)
from runtime.store.file_store import FileStore
from runtime.usage import UsageLog

DAY = "2026-11-03"
T0 = 1_793_664_000.0  # 2026-11-03 00:00 UTC


def record(node: str, job: str, n: int, rng: random.Random) -> UsageRecord:
    path = rng.choice(["fleet", "api"])
    outcome = rng.choice(["done", "done", "cache-hit", "requeued"])
    return UsageRecord(node, job, f"seg-{n}", rng.choice(["transcribe", "translate"]), rng.uniform(1, 30),
                       rng.randrange(100), rng.randrange(100), "faster-whisper" if path == "fleet" else "openai",
                       "tiny.en", T0 + n, T0 + n + 1, outcome, gpu_seconds=rng.uniform(0, 1), path=path)


def flush(store: FileStore, node: str, records: list[UsageRecord], stamp_ms: int) -> str:
    key = usage_key(DAY, node, stamp_ms, f"{stamp_ms:08x}"[-8:])
    store.put(key, b"".join(dump(r) + b"\n" for r in records))
    return key


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


def fill(store: FileStore, rng: random.Random, flushes: int = 12) -> list[UsageRecord]:
    written: list[UsageRecord] = []
    for n in range(flushes):
        for node in ("node-a", "node-b", "node-c"):
            batch = [record(node, f"job-{rng.randrange(4)}", n * 10 + i, rng) for i in range(rng.randrange(1, 6))]
            flush(store, node, batch, int(T0 * 1000) + n * 5000)
            written += batch
    return written


def same(got: list[UsageTotal], want: list[UsageTotal]) -> bool:
    """Equal sums, row by row (float sums in another order differ in the last bit)."""
    def table(rows: list[UsageTotal]) -> dict[tuple[str, ...], tuple[object, ...]]:
        return {(t.day, t.job, t.task, t.engine, t.model, t.path, t.outcome):
                (t.records, pytest.approx(t.audio_seconds), t.tokens_in, t.tokens_out, pytest.approx(t.gpu_seconds))
                for t in rows}
    return len(got) == len(want) and table(got) == table(want)


def key_order(records: list[UsageRecord]) -> list[UsageRecord]:
    return sorted(records, key=lambda r: (r.node, r.started_at, r.segment))


def test_compaction_keeps_every_record_and_the_sums_match_the_raw_ones(store: FileStore) -> None:
    rng = random.Random(7)
    written = fill(store, rng)
    raw_totals = totals_of(written, DAY)
    assert same(read_usage_totals(store, DAY), raw_totals)  # no rollup yet

    result = compact_day(store, DAY, clock=lambda: T0 + 86400)
    assert result is not None and result.records == len(written) and result.nodes == 3
    keys = store.list(usage_prefix(DAY))
    assert len(keys) == 3 and all(k.endswith(".compacted.jsonl.gz") for k in keys)  # one object a node
    assert key_order(read_usage(store, DAY)) == key_order(written)
    rollup = read_rollup(store, DAY)
    assert rollup is not None and sum(c.records for c in rollup.covered) == len(written)
    assert same(read_usage_totals(store, DAY), raw_totals)
    # Idempotent: a second run rewrites nothing it does not need to and changes no figure.
    again = compact_day(store, DAY, clock=lambda: T0 + 86400)
    assert again is not None and again.merged_objects == 0 and store.list(usage_prefix(DAY)) == keys


def test_a_flush_after_compaction_is_read_beside_the_rollup_and_merged_next_time(store: FileStore) -> None:
    rng = random.Random(8)
    written = fill(store, rng)
    compact_day(store, DAY)
    late = [record("node-b", "job-9", 999, rng)]
    flush(store, "node-b", late, int(T0 * 1000) + 10**7)
    expected = totals_of(written + late, DAY)
    assert same(read_usage_totals(store, DAY), expected)
    assert key_order(read_usage(store, DAY)) == key_order(written + late)
    compact_day(store, DAY)
    assert same(read_usage_totals(store, DAY), expected)
    assert len(store.list(usage_prefix(DAY))) == 3


def test_a_crash_before_the_deletes_or_before_the_rollup_counts_nothing_twice(store: FileStore) -> None:
    """Compaction writes the merged object, then the rollup, then deletes: stop it at each step."""
    rng = random.Random(9)
    written = fill(store, rng)
    flushes = store.list(usage_prefix(DAY))
    compact_day(store, DAY)
    merged = {k: store.get(k) for k in store.list(usage_prefix(DAY))}
    for key in flushes:  # the deletes never happened
        store.put(key, b"")  # (content is irrelevant: covered flushes are not read)
    expected = totals_of(written, DAY)
    assert same(read_usage_totals(store, DAY), expected)
    assert key_order(read_usage(store, DAY)) == key_order(written)
    store.delete(usage_rollup_key(DAY))  # and the rollup was never written either
    assert same(read_usage_totals(store, DAY), expected)
    compact_day(store, DAY)  # the next run finishes the job
    assert {k: store.get(k) for k in store.list(usage_prefix(DAY))} == merged


def test_a_stale_or_corrupt_rollup_is_not_trusted(store: FileStore) -> None:
    rng = random.Random(10)
    written = fill(store, rng)
    compact_day(store, DAY)
    expected = totals_of(written, DAY)
    store.put(usage_rollup_key(DAY), b"{not json")
    assert same(read_usage_totals(store, DAY), expected)
    # A rollup that covers an older compacted object than the node's newest: that node is read raw.
    compact_day(store, DAY)
    old = store.get(usage_rollup_key(DAY))
    late = [record("node-a", "job-1", 500, rng)]
    flush(store, "node-a", late, int(T0 * 1000) + 10**7)
    compact_day(store, DAY)
    store.put(usage_rollup_key(DAY), old)
    assert same(read_usage_totals(store, DAY), totals_of(written + late, DAY))


def test_a_corrupt_compacted_object_is_skipped_with_the_rest_of_the_day_read(
        store: FileStore, caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(11)
    written = fill(store, rng)
    compact_day(store, DAY)
    broken = next(k for k in store.list(usage_prefix(DAY)) if "node=node-b" in k)
    store.put(broken, gzip.compress(b"{half a record")[:-5])
    store.delete(usage_rollup_key(DAY))
    others = [r for r in written if r.node != "node-b"]
    assert key_order(read_usage(store, DAY)) == key_order(others)
    assert "record-skipped" in caplog.text and broken in caplog.text


def test_the_agents_usage_log_and_compaction_meet(store: FileStore) -> None:
    """The node's own writer (not this test's) feeds compaction; nothing else lives under the prefix."""
    clock = iter(T0 + n for n in range(100)).__next__
    log = UsageLog(store, "node-z", clock)
    rng = random.Random(12)
    mine = [record("node-z", "job-1", n, rng) for n in range(20)]
    for n, r in enumerate(mine):
        log.add(r)
        if n % 5 == 4:
            log.flush()
    compact_day(store, DAY)
    assert key_order(read_usage(store, DAY)) == key_order(mine)
    assert store.list(USAGE_ROLLUPS) == [usage_rollup_key(DAY)]


def test_the_rollup_keeps_each_transcribed_jobs_media_so_reports_need_no_manifests(store: FileStore) -> None:
    rng = random.Random(13)
    written = fill(store, rng)
    asked: list[set[str]] = []

    def media(jobs: set[str]) -> dict[str, tuple[float, float]]:
        asked.append(set(jobs))
        return {job: (100.0, 60.0) for job in jobs if job != "job-3"}  # job-3: its manifest is unreadable

    compact_day(store, DAY, media=media)
    transcribed = {r.job for r in written if r.outcome == "done" and r.task == "transcribe"}
    totals, known = read_usage_day(store, DAY)
    assert asked == [transcribed] and set(known) == transcribed - {"job-3"}
    assert known["job-1"] == (100.0, 60.0) and same(totals, totals_of(written, DAY))
    flush(store, "node-c", [record("node-c", "job-1", 777, rng)], int(T0 * 1000) + 10**7)
    compact_day(store, DAY, media=media)  # a later compaction asks only for jobs it does not know
    assert asked[1] <= {"job-3"}
