"""A chaos run: three local agents (simulated engine) working through hundreds of short segments
while spot evictions with notice, kill -9s and a queue-backend restart hit them — and the checks
that nothing was lost, duplicated or left unaccounted. A rehearsal of the local fleet, so it lives
beside it: tests/chaos and bench/eviction both run it."""

from __future__ import annotations

import random
import time
import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runtime.config import Settings, load_settings
from runtime.fleet.local_fleet import Fleet
from runtime.jobs import load_manifest, submit
from runtime.media import decode_file
from runtime.queue import open_queue
from runtime.records import RESULTS, TRANSCRIPTS, read_evictions, read_heartbeats, read_usage
from runtime.samples import demo_sample
from runtime.store import open_store
from runtime.store.base import ObjectStore
from runtime.work import TaskOptions, TranscriptResult


def chaos_settings(home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        home=home, transcriber="simulated", simulated_speed=4, segment_max_seconds=1, batch_size=4,
        lease_seconds=3, imds_poll_seconds=0.25, safety_margin_seconds=0.2, heartbeat_seconds=0.25,
        retry_seconds=0.5, engine_seconds_per_audio_second=0.25, sigterm_grace_seconds=5)
    values.update(overrides)
    return load_settings(env={}, **values)


def media_variants(workdir: Path, count: int) -> list[Path]:
    """The demo sample at different gains: same speech, distinct PCM, distinct segments."""
    pcm = decode_file(demo_sample()).samples.astype(np.float64)
    paths = []
    for index in range(count):
        path = workdir / f"variant-{index}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(16000)
            out.writeframes((pcm * (0.45 + 0.05 * index)).astype(np.int16).tobytes())
        paths.append(path)
    return paths


@dataclass
class ChaosPlan:
    preempt_notices: list[float] = field(default_factory=lambda: [0.3, 0.6, 1.0, 2.0, 3.0] * 2)
    kills: int = 3
    restart_backend: Callable[[Fleet], None] | None = None  # gets the fleet, restarts the queue
    interval: float = 0.8
    seed: int = 11


@dataclass
class ChaosReport:
    expected: set[str]
    results: dict[str, bytes]
    evictions: list[dict[str, Any]]
    imds_events: list[dict[str, Any]]
    usage: list[Any]
    kills: list[dict[str, Any]]
    preempts_sent: int
    backend_restarts: int
    wall_seconds: float


def run_chaos(settings: Settings, media: list[Path], plan: ChaosPlan, env: dict[str, str] | None = None,
              nodes: int = 3, timeout: float = 150.0) -> ChaosReport:
    queue, store = open_queue(settings.queue, env=env or {}), open_store(settings.store, env=env or {})
    queue.ensure()
    store.ensure()
    expected: set[str] = set()
    for path in media:
        job = submit(path, queue, store, TaskOptions(model=settings.model), settings.segment_max_seconds).job
        expected.update(ref.id for ref in load_manifest(store, job).segments)
    rng = random.Random(plan.seed)
    fleet = Fleet(settings, [f"chaos-{i + 1}" for i in range(nodes)], restart_after=1.0, env=env).up()
    started = time.monotonic()
    notices = list(plan.preempt_notices)
    kills, restarts, sent = plan.kills, 0, 0
    restart_at = len(notices) // 2
    try:
        next_action = time.monotonic() + 1.5  # let the agents start
        while len(done_segments(store)) < len(expected):
            if time.monotonic() - started > timeout:
                raise AssertionError(f"chaos run did not finish in {timeout} s: "
                                     f"{len(done_segments(store))}/{len(expected)} done")
            chaos_left = notices or kills or (plan.restart_backend and not restarts)
            if time.monotonic() >= next_action and chaos_left:
                # Hit nodes that are past start-up, so most evictions land on a batch in flight.
                running = [n.name for n in fleet.nodes.values() if n.state == "running"
                           and time.time() - n.started_at > 2.0 and not _under_event(fleet, n.name)]
                # Prefer a node with work in hand (its heartbeat says so), so short notices catch a batch.
                busy = [n for n in running if n in _working(store)]
                if running:
                    target = rng.choice(busy or running)
                    if plan.restart_backend and not restarts and sent >= restart_at:
                        plan.restart_backend(fleet)
                        restarts += 1
                    elif notices and (not kills or rng.random() < 0.75):
                        fleet.evict(target, "Preempt", notices.pop(0))
                        sent += 1
                    elif kills:
                        fleet.kill(target)
                        kills -= 1
                next_action = time.monotonic() + plan.interval
            time.sleep(0.05)
        wall = time.monotonic() - started
    finally:
        fleet.down(timeout=20)
    if notices or kills or (plan.restart_backend and not restarts):
        raise AssertionError(f"the work finished before the chaos plan did: {len(notices)} preempts, "
                             f"{kills} kills, restart done: {bool(restarts)} left; give it more work")
    return ChaosReport(
        expected=expected,
        results={k: store.get(k) for k in store.list(RESULTS)},
        evictions=[asdict(r) for r in read_evictions(store)],
        imds_events=[e for e in fleet.server.state.snapshot()["events"]],
        usage=read_usage(store), kills=fleet.status()["kills"], preempts_sent=sent,
        backend_restarts=restarts, wall_seconds=wall)


def done_segments(store: ObjectStore) -> set[str]:
    return {k.rsplit("/", 1)[1].removesuffix(".json") for k in store.list(TRANSCRIPTS)}


def _working(store: ObjectStore) -> set[str]:
    return {b.node for b in read_heartbeats(store) if b.state == "working" and b.in_flight}


def _under_event(fleet: Fleet, name: str) -> bool:
    state = fleet.server.state
    with state.lock:
        return any(e.ended_at is None and name in e.resources for e in state.events.values())


def check(report: ChaosReport) -> dict[str, Any]:
    """Jepsen's total-queue checker, adapted: returns the counts; raises on any violation."""
    found = {key.rsplit("/", 1)[1].removesuffix(".json"): data for key, data in report.results.items()}
    lost = report.expected - set(found)
    unexpected = set(found) - report.expected
    assert not lost, f"lost segments: {sorted(lost)[:5]}"
    assert not unexpected, f"unexpected results: {sorted(unexpected)[:5]}"
    for segment, data in found.items():  # exactly one result per segment, and it is that segment's
        assert TranscriptResult.from_bytes(data).segment == segment
    acked = {e["event_id"]: e for e in report.imds_events if e["acknowledged_at"] is not None}
    records = {r["event_id"]: r for r in report.evictions}
    for event_id, event in acked.items():
        record = records[event_id]
        assert record["drained_at"] <= event["acknowledged_at"], f"{event_id} acknowledged before drained"
    for record in report.evictions:
        window = [u for u in report.usage if u.node == record["node"] and u.outcome == "requeued"
                  and record["drain_started_at"] <= u.ended_at <= record["drained_at"]]
        assert len(window) == record["requeued"], (record, len(window))
        wasted = sum(u.gpu_seconds for u in window)
        assert abs(wasted - record["wasted_gpu_seconds"]) < 0.05, (record, wasted)
    return {"lost": len(lost), "unexpected": len(unexpected), "segments": len(found),
            "evictions": len(report.evictions), "acknowledged": len(acked), "kills": len(report.kills)}
