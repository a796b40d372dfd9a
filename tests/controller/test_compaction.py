"""The controller's daily compaction: the day before on each UTC day's first round, once, retried after
a failure, never today; a missed day is caught up."""

from __future__ import annotations

import random
from pathlib import Path

from runtime.records import read_rollup, usage_prefix
from runtime.store.file_store import FileStore
from spotkit.controller.compaction import DailyCompactor
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
