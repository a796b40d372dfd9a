"""bench/report: usage compaction and the monthly report at fleet scale, against the raw path measured
in the same run.

    python -m bench.report [--jobs-per-day 1000]

1. **Roll-up speed**: 10⁵ and 10⁶ usage records, written as agents write them (one object per flush,
   10 nodes), compacted by `runtime.records.compact_day`: records rolled up per second (target: 10⁶ in
   under 20 s here), beside the raw read that every report did before rollups (`read_usage` + sums).
2. **A 100-node month's report from rollups**: 30 days × 100 nodes of compacted usage (the rollups and
   one compacted object per node-day, as compaction leaves them) and a manifest per job; the time of
   ``spotkit report --format json`` as a user runs it (target: under 5 s), beside the same command on a
   store holding one day of raw flushes (the interpreter's start and the price book are in both).
   The month's size is its jobs, not its records: the rollup has a row per job, engine, path and
   outcome, and each transcribed job's media seconds (kept by compaction), so the report reads no
   manifest for a compacted day — see docs/reports.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runtime.records import (
    JobMedia,
    RollupCoverage,
    UsageRecord,
    UsageRollup,
    UsageTotal,
    compact_day,
    dump,
    job_key,
    read_usage,
    totals_of,
    usage_compacted_key,
    usage_key,
    usage_rollup_key,
)
from runtime.store.file_store import FileStore
from runtime.work import JobManifest, TaskOptions

DAY = 86400.0


def write_flushes(store: FileStore, day: str, start: float, records: int, nodes: int = 10,
                  per_flush: int = 200) -> None:
    rng = random.Random(records)
    for flush in range(records // per_flush):
        node = f"node-{flush % nodes:03d}"
        stamp = int((start + flush) * 1000)
        lines = []
        for n in range(per_flush):
            at = start + flush + n / per_flush
            lines.append(dump(UsageRecord(node, f"job-{rng.randrange(500):04d}", f"seg-{flush}-{n}", "transcribe",
                                          30.0, 0, 120, "faster-whisper", "large-v3", at, at + 0.6, "done",
                                          gpu_seconds=0.6)) + b"\n")
        store.put(usage_key(day, node, stamp, f"{flush:08x}"), b"".join(lines))


def rollup_speed(root: Path, records: int) -> dict[str, float]:
    store = FileStore(root / f"rollup-{records}")
    start = 1_793_664_000.0  # 2026-11-03 00:00 UTC
    write_flushes(store, "2026-11-03", start, records)
    began = time.perf_counter()
    raw = totals_of(read_usage(store, "2026-11-03"), "2026-11-03")
    raw_seconds = time.perf_counter() - began
    began = time.perf_counter()
    result = compact_day(store, "2026-11-03")
    seconds = time.perf_counter() - began
    assert result is not None and result.records == records and len(raw) == result.rows
    return {"records": records, "compact_seconds": round(seconds, 2), "records_per_second": round(records / seconds),
            "raw_read_seconds": round(raw_seconds, 2), "compact_vs_raw_read": round(seconds / raw_seconds, 2)}


def month_store(root: Path, jobs_per_day: int, nodes: int = 100) -> FileStore:
    """30 days × *nodes* of compacted usage, as compaction leaves it, and each job's manifest."""
    store = FileStore(root / "month")
    options = TaskOptions(model="large-v3")
    for d in range(30):
        day = f"2026-11-{d + 1:02d}"
        coverage = []
        for n in range(nodes):
            node = f"node-{n:03d}"
            through = f"{int((1_793_491_200 + d * DAY) * 1000) + 86_399_000:015d}-00000000"
            store.put(usage_compacted_key(day, node, through), b"")  # covered: never read by the report
            coverage.append(RollupCoverage(node, through, 144_000))
        totals, media = [], []
        for j in range(jobs_per_day):
            job = f"{d:02d}{j:06d}".ljust(24, "0")
            totals += [UsageTotal(day, job, "transcribe", "faster-whisper", "large-v3", "fleet", "done", 240, 7200.0,
                                  0, 28_800, 144.0),
                       UsageTotal(day, job, "transcribe", "faster-whisper", "large-v3", "fleet", "requeued", 2, 60.0,
                                  0, 0, 0.5)]
            store.put(job_key(job), JobManifest(job, f"{job}.mp4", "0" * 64, 9000.0, 7260.0, options,
                                                30.0).to_bytes())
            media.append(JobMedia(job, 9000.0, 7260.0))  # compaction keeps it, so the report reads no manifest
        store.put(usage_rollup_key(day), dump(UsageRollup(day, coverage, totals, time.time(), media)))
    return store


def timed_report(store: FileStore, month: str, runs: int = 3) -> float:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SPOTKIT_")}, "SPOTKIT_STORE": store.url}
    home = store.root.parent / f"home-{store.root.name}"
    best = float("inf")
    for _ in range(runs):
        began = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "spotkit", "--home", str(home), "report", "--month", month,
                              "--prices", "snapshot", "--format", "json"],
                             env=env, capture_output=True, text=True, check=False)
        best = min(best, time.perf_counter() - began)
        if out.returncode != 0:
            raise SystemExit(f"report failed: {out.stderr.strip()}")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs-per-day", type=int, default=1000)
    args = parser.parse_args()
    summary: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="spotkit-bench-report-") as tmp:
        root = Path(tmp)
        summary["rollup"] = [rollup_speed(root, n) for n in (100_000, 1_000_000)]
        month = month_store(root, args.jobs_per_day)
        small = FileStore(root / "small")
        write_flushes(small, "2026-11-03", 1_793_664_000.0, 10_000)
        baseline = timed_report(small, "2026-11")
        seconds = timed_report(month, "2026-11")
        summary["month_report"] = {"nodes": 100, "days": 30, "jobs": 30 * args.jobs_per_day,
                                   "records_represented": 30 * 100 * 144_000, "seconds": round(seconds, 2),
                                   "baseline_seconds_one_raw_day_of_10k_records": round(baseline, 2),
                                   "ratio": round(seconds / baseline, 2)}
    million = summary["rollup"][1]  # type: ignore[index]
    summary["targets"] = {"rollup_1e6_under_20_s": million["compact_seconds"] < 20,
                          "month_report_under_5_s": summary["month_report"]["seconds"] < 5}  # type: ignore[index]
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
