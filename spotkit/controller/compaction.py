"""Usage compaction as a controller duty: each UTC day's first round compacts the day before.

Why the controller: it is the one process that runs all month, and its budget reads the month's usage
every round, which only stays cheap once past days are rolled up (`runtime.records.rollup`). A day
can take minutes to compact on a large fleet, so by default it runs beside the rounds, never inside
one; a failure is logged and retried on the next round. Which days: yesterday, and any of the
``lookback_days`` before it that has raw flushes left (a controller that was down on a day's first
round catches up), never today.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.jobs import job_media
from runtime.records import compact_day, day_of, usage_key_parts, usage_prefix
from runtime.store.base import ObjectStore

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
    store: ObjectStore
    clock: Callable[[], float]
    background: bool = True
    lookback_days: int = 3
    _done_on: str = field(default="", init=False)  # the UTC day whose first round compacted
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def tick(self, now: float) -> list[dict[str, str]]:
        """Start the day's compaction on its first round (the actions it took, for the audit log)."""
        today = day_of(now)
        if self._done_on == today or (self._thread is not None and self._thread.is_alive()):
            return []
        self._done_on = today
        if self.background:
            self._thread = threading.Thread(target=self._run, args=(now,), name="usage-compaction", daemon=True)
            self._thread.start()
            return [{"action": "compact-usage", "started": "background"}]
        return self._run(now)

    def _run(self, now: float) -> list[dict[str, str]]:
        done = []
        try:
            for day in days_to_compact(self.store, now, self.lookback_days):
                result = compact_day(self.store, day, self.clock, lambda jobs: job_media(self.store, jobs))
                if result is not None:
                    log.info("event=usage-compacted day=%s nodes=%d records=%d merged=%d rows=%d", day,
                             result.nodes, result.records, result.merged_objects, result.rows)
                    done.append({"action": "compact-usage", "day": day})
        except Exception as err:  # the next round tries again; a report still reads the raw records
            self._done_on = ""
            log.warning("event=usage-compaction-failed error=%r", str(err))
        return done

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
