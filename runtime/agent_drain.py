"""The agent's side of a drain: what the eviction watcher (`runtime.eviction.watcher.Drainable`)
calls from its own thread while the agent's worker keeps running. Kept apart from the work loop in
`runtime.agent`, whose state it shares: the batch in the engine, the leases, the counters."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runtime.eviction.decision import NodeView

if TYPE_CHECKING:
    from runtime.config import Settings
    from runtime.leases import LeaseSet
    from runtime.queue.base import WorkQueue

log = logging.getLogger("spotkit.agent")


@dataclass
class _Batch:
    started: float
    pending: list[Any]  # runtime.agent._Pending
    predicted_seconds: float
    abandoned: set[str] = field(default_factory=set)  # message ids handed back mid-batch


class DrainMixin:
    settings: Settings
    queue: WorkQueue
    leases: LeaseSet
    node: str
    draining: threading.Event
    counts: dict[str, int]
    _lock: threading.Lock
    _batch: _Batch | None
    _hold_until: float | None
    _requeued: int
    _wasted: float
    _engine_rate: float
    on_resumed: Callable[[], None] | None

    if TYPE_CHECKING:  # provided by runtime.agent.Agent
        def _record(self, pending: Any, outcome: str, started: float, tokens_out: int = 0, engine: str = "",
                    model: str = "", error: str = "", gpu_seconds: float = 0.0, ended: float | None = None) -> None:
            ...

        def _requeue_leased(self, why: str, keep_running_batch: bool = False) -> int:
            ...

    # -- Drainable (called from the watcher thread) -----------------------------------------
    def view(self, now: float, drained_for: str | None) -> NodeView:
        with self._lock:
            batch = self._batch
            running = batch is not None and not batch.abandoned
            full_batch = self.settings.batch_size * self.settings.segment_max_seconds
            predicted = batch.predicted_seconds if batch else self._predict(full_batch)
            return NodeView(now, batch.started if batch and running else None, predicted, drained_for)

    def begin_drain(self, reason: str) -> int:
        self.draining.set()
        log.warning("node=%s event=draining reason=%r", self.node, reason)
        return self._requeue_leased(f"drain: {reason}", keep_running_batch=True)

    def abandon_batch(self, now: float) -> tuple[int, float]:
        with self._lock:
            batch = self._batch
            if batch is None or batch.abandoned:
                return 0, 0.0
            ids = {p.message.id for p in batch.pending}
            batch.abandoned.update(ids)
        wasted = max(0.0, now - batch.started)
        share = wasted / max(1, len(batch.pending))
        requeued = 0
        for pending in batch.pending:
            if self.leases.settle(pending.message.id, lambda m: self.queue.release(m, 0)):
                requeued += 1
                self._record(pending, "requeued", batch.started, error="drain: batch could not finish "
                             "before the deadline", gpu_seconds=share, ended=now)
        with self._lock:
            self._requeued += requeued
            self._wasted += share * requeued
        log.warning("node=%s event=batch-abandoned requeued=%d wasted_gpu_seconds=%.2f",
                    self.node, requeued, wasted)
        return requeued, wasted

    def is_drained(self) -> bool:
        with self._lock:
            running = self._batch is not None and len(self._batch.abandoned) < len(self._batch.pending)
        return self.draining.is_set() and not running and len(self.leases) == 0

    def totals(self) -> tuple[int, int, float]:
        with self._lock:
            return self.counts["processed"], self._requeued, self._wasted

    def hold(self, until: float | None) -> None:
        with self._lock:
            self._hold_until = until

    def resume(self) -> None:
        if self.draining.is_set():
            log.warning("node=%s event=resume (event cancelled)", self.node)
            if self.on_resumed is not None:  # e.g. bring vLLM back, without blocking the watcher
                threading.Thread(target=self.on_resumed, name="resume", daemon=True).start()
        self.draining.clear()

    def _predict(self, audio_seconds: float) -> float:
        return audio_seconds * self._engine_rate

