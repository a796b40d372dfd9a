"""A chaos run: three local agents (simulated engine) working through hundreds of short segments
while spot evictions with notice, kill -9s and a queue-backend restart hit them — and the checks
that nothing was lost, duplicated or left unaccounted. A rehearsal of the local fleet, so it lives
beside it: tests/chaos and bench/eviction both run it."""

from __future__ import annotations

import random
import threading
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
from runtime.queue.base import WorkQueue
from runtime.records import RESULTS, TRANSCRIPTS, read_evictions, read_heartbeats, read_usage
from runtime.samples import demo_sample
from runtime.store import open_store
from runtime.store.base import ObjectStore
from runtime.work import TaskOptions, TranscriptResult

EXTRA_SHORT_PREEMPTS = 5  # at most this many more short notices, until one catches a batch in flight
TOP_UP_BELOW = 40  # segments left undone under which a chaos run submits more while its plan is not through


def chaos_settings(home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        home=home, transcriber="simulated", simulated_speed=4, segment_max_seconds=1, batch_size=4,
        lease_seconds=3, imds_poll_seconds=0.25, safety_margin_seconds=0.2, heartbeat_seconds=0.25,
        retry_seconds=0.5, engine_seconds_per_audio_second=0.25, sigterm_grace_seconds=5)
    values.update(overrides)
    return load_settings(env={}, **values)


def media_variants(workdir: Path, count: int, first: int = 0) -> list[Path]:
    """The demo sample at different gains: same speech, distinct PCM, distinct segments."""
    pcm = decode_file(demo_sample()).samples.astype(np.float64)
    paths = []
    for index in range(first, first + count):
        gain = 0.45 + 0.05 * index if index < 10 else 0.40 * 0.97 ** (index - 10)  # each its own, below 1
        path = workdir / f"variant-{index}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(16000)
            out.writeframes((pcm * gain).astype(np.int16).tobytes())
        paths.append(path)
    return paths


@dataclass
class ChaosPlan:
    preempt_notices: list[float] = field(default_factory=lambda: [0.3, 0.6, 1.0, 2.0, 3.0] * 2)
    kills: int = 3
    restart_backend: Callable[[Fleet], None] | None = None  # gets the fleet, restarts the queue
    store_outage: Callable[[float], None] | None = None  # makes the store fail for that many seconds
    store_outage_seconds: float = 3.0
    shared_preempts: int = 0  # Preempts naming two VMs at once (acknowledged only once both drained)
    shared_notice: float = 4.0
    resubmits: int = 0  # the same media submitted again while the agents work on it
    interval: float = 0.8
    seed: int = 11

    def actions(self, rng: random.Random) -> list[str]:
        """Every chaos action of the plan, in a seeded order; the backend restart half-way."""
        rest = ["kill"] * self.kills + ["shared"] * self.shared_preempts + ["resubmit"] * self.resubmits
        rest += ["outage"] if self.store_outage else []
        rng.shuffle(rest)
        preempts = [f"preempt:{n}" for n in self.preempt_notices]
        actions = [a for pair in zip(preempts, rest + [""] * len(preempts), strict=False) for a in pair if a]
        actions += rest[len(preempts):]
        if self.restart_backend:
            actions.insert(len(actions) // 2, "restart")
        return actions


def file_store_outage(root: Path) -> Callable[[float], None]:
    """A store outage on local disk: `results/` swapped for a plain file, so every result read and
    write fails (not a directory) for that long, then put back — what a read-only disk does to it."""
    def outage(seconds: float) -> None:
        results, away = root / "results", root / "results.outage"
        results.rename(away)
        results.write_bytes(b"")

        def restore() -> None:
            results.unlink()
            away.rename(results)

        timer = threading.Timer(seconds, restore)
        timer.daemon = True
        timer.start()

    return outage


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
    poisoned: int = 0  # messages in the poison queue: every chaos segment is good work, so each is wrong
    done_actions: dict[str, int] = field(default_factory=dict)


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
    actions = plan.actions(rng)
    done: dict[str, int] = {}
    fleet = Fleet(settings, [f"chaos-{i + 1}" for i in range(nodes)], restart_after=1.0, env=env).up()
    started = time.monotonic()
    topped_up = extra_short = 0
    short_caught = False
    try:
        next_action = time.monotonic() + 1.5  # let the agents start
        while len(finished := done_segments(store)) < len(expected) or _outage_on(store):
            if actions and len(expected) - len(finished) < TOP_UP_BELOW:
                # The plan is not through and the work nearly is (a fast machine, a lucky order): more work,
                # so every action still lands on a fleet with batches in flight.
                [extra] = media_variants(media[0].parent, 1, first=len(media) + topped_up)
                topped_up += 1
                job = submit(extra, queue, store, TaskOptions(model=settings.model), settings.segment_max_seconds).job
                expected.update(ref.id for ref in load_manifest(store, job).segments)
            if time.monotonic() - started > timeout:
                raise AssertionError(f"chaos run did not finish in {timeout} s: "
                                     f"{len(done_segments(store))}/{len(expected)} done")
            if time.monotonic() >= next_action and not actions and not short_caught \
                    and extra_short < EXTRA_SHORT_PREEMPTS:
                # Read once an interval, and never again once seen: the loop runs every 50 ms.
                short_caught = caught_short(read_evictions(store))
                if not short_caught:
                    # No short notice has caught a batch yet (on a loaded machine a drain can notice late, after
                    # the batch ended): another, so the run exercises what it claims to.
                    actions.append("preempt:0.3")
                    extra_short += 1
                next_action = time.monotonic() + plan.interval
            if time.monotonic() >= next_action and actions:
                # Hit nodes that are past start-up, so most evictions land on a batch in flight.
                running = [n.name for n in fleet.nodes.values() if n.state == "running"
                           and time.time() - n.started_at > 2.0 and not _under_event(fleet, n.name)]
                # Prefer a node with work in hand (its heartbeat says so), so short notices catch a batch.
                busy = [n for n in running if n in _working(store)]
                # A notice shorter than a batch only tests something if a batch is in flight: wait for one
                # (a busy node) rather than spend it on an idle node — on a loaded machine that happened.
                short = actions[0].startswith("preempt:") and float(actions[0].split(":")[1]) < 1.0
                if running and (busy or not short) and _act(actions[0], fleet, rng.choice(busy or running),
                                                            running, plan, rng, queue, store, media, settings):
                    kind = actions.pop(0).split(":")[0]
                    done[kind] = done.get(kind, 0) + 1
                next_action = time.monotonic() + plan.interval
            time.sleep(0.05)
        wall = time.monotonic() - started
    finally:
        fleet.down(timeout=20)
    if actions:
        raise AssertionError(f"the work finished before the chaos plan did: {actions} left")
    return ChaosReport(
        expected=expected,
        results={k: store.get(k) for k in store.list(RESULTS)},
        evictions=[asdict(r) for r in read_evictions(store)],
        imds_events=[e for e in fleet.server.state.snapshot()["events"]],
        usage=read_usage(store), kills=fleet.status()["kills"], preempts_sent=done.get("preempt", 0),
        backend_restarts=done.get("restart", 0), wall_seconds=wall,
        poisoned=queue.poison_queue().approximate_count(), done_actions=done)


def _act(action: str, fleet: Fleet, target: str, running: list[str], plan: ChaosPlan, rng: random.Random,
         queue: WorkQueue, store: ObjectStore, media: list[Path], settings: Settings) -> bool:
    """Carry out one chaos action; False if it cannot be done now (try again at the next interval)."""
    kind, _, arg = action.partition(":")
    if kind == "preempt":
        fleet.evict(target, "Preempt", float(arg))
    elif kind == "kill":
        fleet.kill(target)
    elif kind == "restart" and plan.restart_backend is not None:
        plan.restart_backend(fleet)
    elif kind == "outage" and plan.store_outage is not None:
        plan.store_outage(plan.store_outage_seconds)
    elif kind == "shared":
        if len(running) < 2:
            return False
        pair = [target, rng.choice([n for n in running if n != target])]
        fleet.server.state.add_event("Preempt", pair, plan.shared_notice)
    elif kind == "resubmit":
        submit(rng.choice(media), queue, store, TaskOptions(model=settings.model), settings.segment_max_seconds)
    return True


def caught_short(evictions: list[Any]) -> bool:
    """Some Preempt with a notice shorter than the 1-second batch found one in flight: it was requeued."""
    return any(r.notice_seconds < 1.0 and r.wasted_gpu_seconds > 0 for r in evictions)


def done_segments(store: ObjectStore) -> set[str]:
    return {k.rsplit("/", 1)[1].removesuffix(".json") for k in store.list(TRANSCRIPTS)}


def _outage_on(store: ObjectStore) -> bool:
    root = Path(store.url.removeprefix("file://")) if store.url.startswith("file://") else None
    return root is not None and (root / "results.outage").exists()


def _working(store: ObjectStore, fresh_seconds: float = 0.5) -> set[str]:
    """Nodes whose latest heartbeat, written moments ago, says a batch is in hand."""
    now = time.time()
    return {b.node for b in read_heartbeats(store)
            if b.state == "working" and b.in_flight and now - b.updated_at <= fresh_seconds}


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
    records: dict[str, list[dict[str, Any]]] = {}
    for r in report.evictions:
        records.setdefault(r["event_id"], []).append(r)
    for event_id, event in acked.items():
        assert records.get(event_id), f"{event_id} acknowledged with no drain recorded"
        for record in records[event_id]:
            assert record["drained_at"] <= event["acknowledged_at"], f"{event_id} acknowledged before drained"
    shared = [e for e in report.imds_events if len(e["resources"]) > 1]
    for event in shared:  # acknowledging releases it for all: no VM it names may go before it drained
        drained = {r["node"]: r["drained_at"] for r in records.get(event["event_id"], [])}
        for kill in report.kills:  # at NotBefore Azure goes ahead anyway; before it, only an approval can
            if event["event_id"] in kill["why"] and kill["at"] < event["not_before"]:
                assert kill["node"] in drained and drained[kill["node"]] <= kill["at"], \
                    f"{kill['node']} deallocated before it drained for shared event {event['event_id']}"
    for record in report.evictions:
        window = [u for u in report.usage if u.node == record["node"] and u.outcome == "requeued"
                  and record["drain_started_at"] <= u.ended_at <= record["drained_at"]]
        assert len(window) == record["requeued"], (record, len(window))
        wasted = sum(u.gpu_seconds for u in window)
        assert abs(wasted - record["wasted_gpu_seconds"]) < 0.05, (record, wasted)
    done: dict[str, int] = {}
    for u in report.usage:
        if u.outcome == "done" and u.task == "transcribe":
            done[u.segment] = done.get(u.segment, 0) + 1
    duplicated = sorted(s for s, n in done.items() if n > 1)
    assert not duplicated, f"segments whose work was counted more than once: {duplicated[:5]}"
    assert report.poisoned == 0, f"{report.poisoned} good segments poisoned"
    return {"lost": len(lost), "unexpected": len(unexpected), "duplicated": len(duplicated),
            "wrongly_poisoned": report.poisoned, "segments": len(found), "evictions": len(report.evictions),
            "acknowledged": len(acked), "kills": len(report.kills), "shared_preempts": len(shared)}


def summary(counts: dict[str, Any]) -> str:
    return (f"lost / duplicated / wrongly poisoned = {counts['lost']} / {counts['duplicated']} / "
            f"{counts['wrongly_poisoned']} over {counts['segments']} segments, {counts['evictions']} drains, "
            f"{counts['kills']} kills, {counts['shared_preempts']} shared Preempts")
