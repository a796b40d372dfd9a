"""The batch in the engine: at most one at a time, with its own lock, because two threads touch it —
the work loop starts and ends it, the drain (on the watcher's thread) may abandon it.

It also holds what the drain decision needs to know about the engine: how long a batch of a given
length takes (learned from every batch, a prior until the first) and the Freeze hold (start no batch
that would still run when a Freeze begins).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.engines.base import AudioItem
from runtime.queue.base import Message
from runtime.work import WorkItem


@dataclass
class Pending:
    """One leased message on its way through the agent."""

    message: Message
    item: WorkItem
    audio: AudioItem | None = None


@dataclass
class RunningBatch:
    started: float
    pending: list[Pending]
    predicted_seconds: float
    abandoned: bool = False  # handed back mid-batch by a drain: its results are thrown away
    settling: bool = False  # out of the engine, its messages being settled: no longer abandonable
    ids: frozenset[str] = field(default=frozenset())

    def __post_init__(self) -> None:
        self.ids = frozenset(p.message.id for p in self.pending)

    def shares(self, engine_seconds: float) -> list[float]:
        """Each segment's share of the batch's engine time, by its audio length (evenly if it has none)."""
        audio = [p.item.seconds for p in self.pending]
        total = sum(audio)
        if total <= 0:
            return [engine_seconds / len(audio)] * len(audio)
        return [engine_seconds * seconds / total for seconds in audio]


class BatchSlot:
    def __init__(self, engine_seconds_per_audio_second: float, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._batch: RunningBatch | None = None
        self._hold_until: float | None = None
        self._rate = engine_seconds_per_audio_second  # engine seconds per audio second

    def predict(self, audio_seconds: float) -> float:
        with self._lock:
            return audio_seconds * self._rate

    def begin(self, pending: list[Pending], allowed: Callable[[], bool]) -> RunningBatch | None:
        """The batch now running, or None if *allowed* says no (a drain or stop began a moment ago
        and has already handed these messages back)."""
        audio = sum(p.item.seconds for p in pending)
        with self._lock:
            if not allowed():
                return None
            self._batch = RunningBatch(self.clock(), pending, audio * self._rate)
            return self._batch

    def settle(self, batch: RunningBatch, learn: bool = True) -> float | None:
        """The engine finished *batch*: learn its speed and keep it counted as running while its
        messages are settled, so a drain neither hands them back nor declares the node drained
        meanwhile. None if a drain abandoned it first (its results must be thrown away)."""
        took = self.clock() - batch.started
        audio = sum(p.item.seconds for p in batch.pending)
        with self._lock:
            if batch.abandoned:
                return None
            batch.settling = True
            if learn and audio > 0:
                self._rate = 0.7 * self._rate + 0.3 * (took / audio)
        return took

    def end(self, batch: RunningBatch) -> None:
        """The batch's messages are settled (or it failed, or was abandoned): the slot is free."""
        with self._lock:
            if self._batch is batch:
                self._batch = None

    def running(self) -> RunningBatch | None:
        """The batch in the engine that still counts (not abandoned), if any."""
        with self._lock:
            return self._batch if self._batch is not None and not self._batch.abandoned else None

    def abandon(self) -> RunningBatch | None:
        """Mark the running batch abandoned (its messages are being handed back); None if there is none."""
        with self._lock:
            batch = self._batch
            if batch is None or batch.abandoned or batch.settling:
                return None
            batch.abandoned = True
            return batch

    def hold(self, until: float | None) -> None:
        with self._lock:
            self._hold_until = until

    def wait_for_hold(self, audio_seconds: float, interrupted: Callable[[], bool],
                      on_hold: Callable[[], None]) -> bool:
        """Start no batch that would straddle a Freeze; False if *interrupted* (stop, drain) meanwhile."""
        while not interrupted():
            with self._lock:
                until, rate = self._hold_until, self._rate
            if until is None or self.clock() + audio_seconds * rate <= until:
                return True
            on_hold()
            time.sleep(0.05)
        return False
