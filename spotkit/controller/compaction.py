"""The controller's daily duties (`spotkit.controller.daily`): usage compaction and media retention.

Compaction: each UTC day's first round compacts the day before, because the budget reads the month's
usage every round, which only stays cheap once past days are rolled up (`runtime.records.rollup`).
Which days: yesterday, and any of the ``lookback_days`` before it that has raw flushes left (a
controller that was down on a day's first round catches up), never today. Media retention: the
segment audio of jobs past their keys' ``media_retention_days`` is deleted, results kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.jobs import job_media
from runtime.records import compact_day, day_of, usage_key_parts, usage_prefix
from runtime.retention import expire_media
from runtime.store.base import ObjectStore
from spotkit.controller.daily import Actions, OncePerDay

log = logging.getLogger("spotkit.controller")
DAY = 86400.0


def days_to_compact(store: ObjectStore, now: float, lookback_days: int) -> list[str]:
    """Past UTC days (oldest first) in the look-back window that still hold raw flushes."""
    due = []
    for back in range(lookback_days, 0, -1):
        day = day_of(now - back * DAY)
        keys = store.list(usage_prefix(day))
        if any(parts is not None and not parts[3] for parts in map(usage_key_parts, keys)):
            due.append(day)
    return due


@dataclass
class DailyCompactor:
    """Compacts past days' usage once a day (`OncePerDay`); until it has, reports read the raw flushes."""

    store: ObjectStore
    clock: Callable[[], float]
    background: bool = True
    lookback_days: int = 3
    _runner: OncePerDay = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._runner = OncePerDay("compact-usage", self._compact, self.background)

    def tick(self, now: float) -> Actions:
        return self._runner.tick(now)

    def join(self, timeout: float | None = None) -> None:
        self._runner.join(timeout)

    def _compact(self, now: float) -> Actions:
        done = []
        for day in days_to_compact(self.store, now, self.lookback_days):
            result = compact_day(self.store, day, self.clock, lambda jobs: job_media(self.store, jobs))
            if result is not None:
                log.info("event=usage-compacted day=%s nodes=%d records=%d merged=%d rows=%d", day,
                         result.nodes, result.records, result.merged_objects, result.rows)
                done.append({"action": "compact-usage", "day": day})
        return done


def media_expiry(store: ObjectStore, background: bool = True) -> OncePerDay:
    """Applies the gateway keys' media retention once a day (`runtime.retention.expire_media`)."""

    def expire(now: float) -> Actions:
        done = []
        for record in expire_media(store, now):
            log.info("event=media-expired job=%s segments=%d kept=%d keys=%s", record.job, record.segments_deleted,
                     record.segments_kept, ",".join(record.key_ids))
            done.append({"action": "expire-media", "job": record.job, "segments": str(record.segments_deleted)})
        return done

    return OncePerDay("expire-media", expire, background)
