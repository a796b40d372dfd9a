"""Usage records: what every node did, in one place, for cost policies and monthly reports.

Records (`runtime.records.UsageRecord`) are append-only JSON lines under
``usage/day=YYYY-MM-DD/node=NAME/`` in the store. Each flush writes a new object with a unique key
(never rewriting one), which works the same on local disk and on blob storage and needs no locking
between nodes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from runtime.records import UsageRecord, day_of, dump, usage_key
from runtime.store.base import ObjectStore


class UsageLog:
    """Buffers a node's records and writes them as one object per flush."""

    def __init__(self, store: ObjectStore, node: str, clock: Callable[[], float]) -> None:
        self.store = store
        self.node = node
        self.clock = clock
        self._pending: list[UsageRecord] = []
        self._lock = threading.Lock()

    def add(self, record: UsageRecord) -> None:
        with self._lock:
            self._pending.append(record)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        by_day: dict[str, list[UsageRecord]] = {}
        for record in pending:
            by_day.setdefault(day_of(record.ended_at), []).append(record)
        for day in list(by_day):
            key = usage_key(day, self.node, int(self.clock() * 1000), uuid.uuid4().hex[:8])
            body = b"".join(dump(r) + b"\n" for r in by_day[day])
            try:
                self.store.put_if_absent(key, body)
            except Exception:
                with self._lock:  # keep what was not written for the next flush rather than lose it
                    self._pending = [r for records in by_day.values() for r in records] + self._pending
                raise
            del by_day[day]
