"""Queue load at fleet scale on one machine: a job of many tiny segments and N in-process agents on the
simulated engine. For the sharding test (1,000 segments, 4 shards, 4 agents) and bench/queue, which
count the queue operations each segment costs; no inference, no media decoding.

The job is real as far as the kit can tell — segment audio in the store, a manifest, one work item
per segment — only its audio is 0.2 s of seeded noise, so 1,000 segments are written in seconds.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from runtime.agent import Agent
from runtime.audio_codec import encode_flac
from runtime.config import Settings
from runtime.engines.simulated import SimulatedTranscriber
from runtime.media import SAMPLE_RATE, Pcm
from runtime.queue.base import WorkQueue
from runtime.records import QueuedRecord, audio_key, dump, job_key, queued_key
from runtime.store.base import ObjectStore
from runtime.work import JobManifest, SegmentRef, TaskOptions, WorkItem, segment_id


def synthetic_job(queue: WorkQueue, store: ObjectStore, segments: int, options: TaskOptions,
                  seconds: float = 0.2, seed: int = 0) -> JobManifest:
    """Write a job of *segments* distinct noise segments and enqueue one work item each."""
    rng = np.random.default_rng(seed)
    refs: list[SegmentRef] = []
    samples = int(seconds * SAMPLE_RATE)
    for index in range(segments):
        pcm = Pcm(rng.integers(-300, 300, samples, dtype=np.int16))
        seg = segment_id(pcm, options)
        store.put_if_absent(audio_key(seg), encode_flac(pcm))
        refs.append(SegmentRef(seg, index, [[index * samples, (index + 1) * samples]], round(pcm.seconds, 3)))
    job = hashlib.sha256(f"spotkit-load\0{seed}\0{segments}\0{seconds}".encode()).hexdigest()[:24]
    manifest = JobManifest(job=job, source="synthetic", source_sha256="0" * 64,
                           duration_seconds=round(segments * seconds, 3), speech_seconds=round(segments * seconds, 3),
                           options=options, segment_max_seconds=seconds, segments=refs)
    store.put(job_key(job), manifest.to_bytes())
    queue.send_many([WorkItem(job, ref.id, options, ref.speech_seconds).encode() for ref in refs])
    now = time.time()
    for ref in refs:  # as `submit` does after its sends: what `spotkit status` counts as queued
        store.put(queued_key(ref.id), dump(QueuedRecord(job, ref.id, now)))
    return manifest


@dataclass
class AgentsRun:
    codes: list[int]
    wall_seconds: float
    operations: Counter[str]  # every agent's queue operations, by kind


def run_agents(settings: Settings, queues: list[WorkQueue], stores: list[ObjectStore],
               timeout: float = 300.0) -> AgentsRun:
    """One simulated agent per (queue, store) pair, each in a thread, until all are idle."""
    codes = [-1] * len(queues)
    agents: list[Agent] = []
    for index, (queue, store) in enumerate(zip(queues, stores, strict=True)):
        mine = replace(settings, node_name=f"load-{index + 1}",
                       cache_dir=settings.home / "nodes" / f"load-{index + 1}" / "cache")
        engine = SimulatedTranscriber(settings.model, settings.simulated_speed)
        agents.append(Agent(mine, queue, store, lambda e=engine: e, until_idle=True))  # type: ignore[misc]

    def work(index: int) -> None:
        codes[index] = agents[index].run()

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(i,), name=f"load-agent-{i + 1}") for i in range(len(agents))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, timeout - (time.monotonic() - started)))
    if any(thread.is_alive() for thread in threads):
        for agent in agents:
            agent.request_stop("load run timed out")
        for thread in threads:
            thread.join(30)
        raise TimeoutError(f"the agents did not finish in {timeout} s")
    total: Counter[str] = Counter()
    for queue in queues:
        total.update(queue.operations())
    return AgentsRun(codes, time.monotonic() - started, total)
