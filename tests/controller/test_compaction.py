"""The controller's daily duties: compaction of the day before on each UTC day's first round, once,
retried after a failure, never today, a missed day caught up; media retention applied once a day."""

from __future__ import annotations

import random
from pathlib import Path

from runtime.agent.loop import Agent
from runtime.config import load_settings
from runtime.engines.revision import SIMULATED_REVISION
from runtime.engines.simulated import SimulatedTranscriber
from runtime.gateway.apikeys import create_key
from runtime.jobs import load_manifest, submit
from runtime.queue import open_queue
from runtime.records import JobOwner, audio_key, dump, job_owner_key, read_rollup, usage_prefix
from runtime.retention import DAY as RETENTION_DAY
from runtime.store import open_store
from runtime.store.file_store import FileStore
from runtime.work import TaskOptions
from spotkit.controller.compaction import DailyCompactor, media_expiry
from tests.conftest import DEMO_SAMPLE
from tests.runtime.test_usage_rollup import DAY, T0, flush, record

NEXT_DAY = T0 + 86400 + 60


class FlakyStore(FileStore):
    """A store whose rollup write fails once (an outage mid-compaction)."""

    failures = 1

    def put(self, key: str, data: bytes) -> None:
        if key.startswith("usage-rollups/") and self.failures:
            self.failures -= 1
            raise OSError("store unavailable")
        super().put(key, data)


def test_the_first_round_of_a_day_compacts_the_day_before_once(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    rng = random.Random(1)
    for n in range(5):
        flush(store, "node-a", [record("node-a", "job-1", n, rng)], int(T0 * 1000) + n)
    compactor = DailyCompactor(store, lambda: NEXT_DAY, background=False)
    assert compactor.tick(T0 + 3600) == []  # that day itself: nothing is compacted yet
    assert read_rollup(store, DAY) is None
    compactor = DailyCompactor(store, lambda: NEXT_DAY, background=False)
    assert compactor.tick(NEXT_DAY) == [{"action": "compact-usage", "day": DAY}]
    assert read_rollup(store, DAY) is not None and len(store.list(usage_prefix(DAY))) == 1
    assert compactor.tick(NEXT_DAY + 60) == []  # once a day


def test_a_failed_compaction_is_tried_again_next_round_and_a_missed_day_caught_up(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "store")
    rng = random.Random(2)
    flush(store, "node-a", [record("node-a", "job-1", 1, rng)], int(T0 * 1000))
    compactor = DailyCompactor(store, lambda: NEXT_DAY, background=False)
    later = NEXT_DAY + 86400  # the controller was down on the day after DAY's first round
    assert compactor.tick(later) == []  # the store failed: logged, not fatal
    assert compactor.tick(later + 60) == [{"action": "compact-usage", "day": DAY}]


def test_in_the_background_a_round_does_not_wait(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    flush(store, "node-a", [record("node-a", "job-1", 1, random.Random(3))], int(T0 * 1000))
    compactor = DailyCompactor(store, lambda: NEXT_DAY)
    assert compactor.tick(NEXT_DAY) == [{"action": "compact-usage", "started": "background"}]
    compactor.join(30)
    assert read_rollup(store, DAY) is not None


def test_the_daily_media_expiry_deletes_what_retention_let_go(tmp_path: Path) -> None:
    sim = load_settings(env={}, home=tmp_path / "home", transcriber="simulated", simulated_speed=500.0,
                        idle_seconds=0.3, retry_seconds=0)
    queue, store = open_queue(sim.queue), open_store(sim.store)
    queue.ensure()
    store.ensure()
    key, _ = create_key(store, "team-a", media_retention_days=7)
    job = submit(DEMO_SAMPLE, queue, store, TaskOptions(model=sim.model, revision=SIMULATED_REVISION), 30.0).job
    store.put(job_owner_key(job, key.id), dump(JobOwner(job, key.id, T0, "fleet")))  # as the gateway marks it
    engine = SimulatedTranscriber(sim.model, sim.simulated_speed)
    assert Agent(sim, queue, store, lambda: engine, until_idle=True).run() == 0
    duty = media_expiry(store, background=False)
    assert duty.tick(T0 + 6 * RETENTION_DAY) == []  # not yet
    duty = media_expiry(store, background=False)
    assert duty.tick(T0 + 8 * RETENTION_DAY) == [{"action": "expire-media", "job": job, "segments": "2"}]
    assert not any(store.exists(audio_key(r.id)) for r in load_manifest(store, job).segments)
    assert duty.tick(T0 + 8 * RETENTION_DAY + 60) == []  # once a day
