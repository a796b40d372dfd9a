"""Usage records: what every node did, in one place, for cost policies and monthly reports.

Records are append-only JSON lines under ``usage/day=YYYY-MM-DD/node=NAME/`` in the store. Each
flush writes a new object with a unique key (never rewriting one), which works the same on local
disk and on blob storage and needs no locking between nodes.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from runtime.store.base import ObjectStore

OUTCOMES = ("done", "cache-hit", "requeued", "failed")


@dataclass(frozen=True)
class UsageRecord:
    node: str
    job: str
    segment: str
    task: str
    audio_seconds: float
    tokens_in: int
    tokens_out: int
    engine: str
    model: str
    started_at: float
    ended_at: float
    outcome: str  # one of OUTCOMES
    error: str = ""
    gpu_seconds: float = 0.0  # engine time spent on this segment (its share of the batch)


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


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
            by_day.setdefault(_day(record.ended_at), []).append(record)
        try:
            for day, records in by_day.items():
                key = (f"usage/day={day}/node={self.node}/"
                       f"{int(self.clock() * 1000):015d}-{uuid.uuid4().hex[:8]}.jsonl")
                body = "".join(json.dumps(asdict(r), sort_keys=True) + "\n" for r in records)
                self.store.put_if_absent(key, body.encode())
        except Exception:
            with self._lock:  # keep them for the next flush rather than lose them
                self._pending = pending + self._pending
            raise


def read_usage(store: ObjectStore, day: str | None = None) -> list[UsageRecord]:
    """All records (or one UTC day's), oldest object first."""
    records = []
    for key in store.list(f"usage/day={day}/" if day else "usage/"):
        for line in store.get(key).decode().splitlines():
            if line.strip():
                records.append(UsageRecord(**json.loads(line)))
    return records
