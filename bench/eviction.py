"""bench/eviction: how fast a node drains on a spot eviction, what it wastes, and how much sooner
its work is redone elsewhere than if the node had simply died.

    python -m bench.eviction [--evictions 20]

Part A — a local fleet of three agents (simulated engine: 1-second segments, batches of four,
0.5 s per batch) under a stream of ``Preempt`` events with 0.3–4 s of notice, IMDS polled every
second as in production. Per eviction: *stop latency* (event visible at the metadata service → node
pulls nothing and has requeued all it will not finish), *drain latency* (→ node fully drained, the
batch that fitted finished, records written), wasted GPU seconds.

Part B — recovery, against a baseline in the same run: node A holds a 4-second batch; either it
gets a ``Preempt`` with 3 s of notice (spotkit drains and requeues at once) or it is killed (the
baseline: a node without the watcher, whose leases must expire). A new node B joins at that moment.
Time until all of A's in-flight segments have results.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from runtime.config import Settings
from runtime.fleet.chaos import ChaosPlan, chaos_settings, done_segments, media_variants, run_chaos
from runtime.fleet.local_fleet import Fleet
from runtime.jobs import submit
from runtime.queue import open_queue
from runtime.records import read_heartbeats
from runtime.store import open_store
from runtime.work import TaskOptions


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def part_a(workdir: Path, evictions: int) -> dict[str, Any]:
    settings = chaos_settings(workdir / "a", simulated_speed=8, imds_poll_seconds=1.0,
                              safety_margin_seconds=0.2, heartbeat_seconds=1)
    notices = [0.3, 0.6, 1.0, 2.0, 4.0] * (evictions // 5 + 1)
    report = run_chaos(settings, media_variants(workdir, 14), ChaosPlan(notices[:evictions], kills=0,
                                                                       interval=0.6), timeout=300)
    created = {e["event_id"]: e["created_at"] for e in report.imds_events}
    rows = [{"notice": r["notice_seconds"], "stop": r["drain_started_at"] - created[r["event_id"]],
             "drained": r["drained_at"] - created[r["event_id"]], "wasted": r["wasted_gpu_seconds"],
             "requeued": r["requeued"]} for r in report.evictions if r["event_id"] in created]
    return {"evictions": rows, "segments": len(report.expected), "sent": report.preempts_sent}


def _fleet_settings(home: Path, lease: int) -> Settings:
    # A batch of four 1-second segments takes 4 s: longer than the 3 s notice, so it is requeued.
    return chaos_settings(home, simulated_speed=1, batch_size=4, lease_seconds=lease,
                          imds_poll_seconds=1.0, heartbeat_seconds=0.1, engine_seconds_per_audio_second=1.0)


def recovery_once(workdir: Path, mode: str, lease: int) -> float:
    """Seconds from the interruption until another node has finished all of A's segments."""
    settings = _fleet_settings(workdir / f"{mode}-{time.monotonic_ns()}", lease)
    queue, store = open_queue(settings.queue), open_store(settings.store)
    queue.ensure()
    store.ensure()
    fleet = Fleet(settings, ["node-a"]).up()
    try:
        for path in media_variants(workdir, 2):
            submit(path, queue, store, TaskOptions(), settings.segment_max_seconds)
        held: list[str] = []
        deadline = time.monotonic() + 60
        while not held:  # wait until A is inside a batch
            beats = [b for b in read_heartbeats(store) if b.node == "node-a" and b.state == "working"]
            held = list(beats[0].in_flight) if beats else []
            if time.monotonic() > deadline:
                raise SystemExit("node-a never started working")
            time.sleep(0.02)
        started = time.time()
        if mode == "preempt":
            fleet.evict("node-a", "Preempt", 3.0)
        else:
            fleet.kill("node-a")
        fleet.add("node-b")
        while not set(held) <= done_segments(store):
            time.sleep(0.02)
        return time.time() - started
    finally:
        fleet.down(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evictions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lease-seconds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spotkit-bench-") as tmp:
        workdir = Path(tmp)
        a = part_a(workdir, args.evictions)
        rows = a["evictions"]
        stop = [r["stop"] for r in rows]
        drained = [r["drained"] for r in rows]
        wasted = [r["wasted"] for r in rows]
        print(f"Part A: {a['sent']} Preempts on a 3-node fleet, {a['segments']} segments, IMDS polled every 1 s; "
              f"{len(rows)} seen and drained before the VM was gone (NotBefore has whole seconds, so a notice "
              "under ~1 s can start before the next poll)")
        print(f"{'':34}{'p50':>8}{'p99':>8}{'max':>8}")
        for name, values in (("stop latency s (visible → requeued)", stop),
                             ("drain latency s (visible → drained)", drained),
                             ("wasted GPU s per eviction", wasted)):
            print(f"{name:34}{percentile(values, 50):>8.2f}{percentile(values, 99):>8.2f}{max(values):>8.2f}")
        short = [r for r in rows if r["notice"] < 0.5]
        print(f"notice < one batch (0.5 s): {len(short)} evictions, {sum(r['requeued'] for r in short)} segments "
              f"requeued at once, {sum(r['wasted'] for r in short):.2f} GPU s wasted in all")

        b_preempt = [recovery_once(workdir, "preempt", args.lease_seconds) for _ in range(args.rounds)]
        b_kill = [recovery_once(workdir, "kill", args.lease_seconds) for _ in range(args.rounds)]
        p, k = statistics.median(b_preempt), statistics.median(b_kill)
        print(f"\nPart B: time until another node finished the interrupted node's batch (median of {args.rounds})")
        print(f"  Preempt with 3 s notice, spotkit drain:     {p:6.2f} s")
        print(f"  kill -9, lease expiry ({args.lease_seconds} s lease):       {k:6.2f} s")
        print(f"  recovery speed-up, baseline / spotkit:      {k / p:6.2f}x")
        print(json.dumps({"bench": "eviction", "stop_p50": percentile(stop, 50), "stop_p99": percentile(stop, 99),
                          "drain_p50": percentile(drained, 50), "drain_p99": percentile(drained, 99),
                          "wasted_gpu_s_mean": statistics.mean(wasted), "recovery_drain_s": p,
                          "recovery_lease_expiry_s": k, "speedup": k / p}))


if __name__ == "__main__":
    main()
