"""Settling a leased message — done, cache hit, failed, requeued, poisoned — and what the node counts of it.

Every outcome is one queue action under the lease (`LeaseSet.settle`, so the renewer never swaps the
pop receipt underneath it) and one usage record. The counters live here, under one lock, because the
work loop and the drain (on the watcher's thread) both settle messages and the watcher reads the
totals to write the eviction record.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from runtime.agent.batch import Pending, RunningBatch
from runtime.agent.leases import LeaseSet
from runtime.agent.metrics import AgentMetrics
from runtime.engines.base import METERED_ENGINES
from runtime.errors import BadMessage, SpotkitError
from runtime.queue.base import Message, WorkQueue
from runtime.records import PoisonRecord, UsageRecord, dump, poison_key, queued_key
from runtime.redact import redact
from runtime.retry import Backoff
from runtime.store.base import ObjectStore
from runtime.usage import UsageLog
from runtime.work import TRANSCRIBE, WorkItem

log = logging.getLogger("spotkit.agent")


@dataclass(frozen=True)
class Counts:
    processed: int = 0  # done or answered from the cache
    cache_hits: int = 0
    failures: int = 0
    requeued: int = 0  # handed back (drains, stops, failed iterations)
    wasted_gpu_seconds: float = 0.0  # engine time of abandoned batches


class Settler:
    def __init__(self, node: str, queue: WorkQueue, store: ObjectStore, leases: LeaseSet, usage: UsageLog,
                 metrics: AgentMetrics, clock: Callable[[], float], retry_seconds: float,
                 default_engine: Callable[[], str], path: Callable[[], str] = lambda: "fleet") -> None:
        self.node, self.queue, self.store, self.leases = node, queue, store, leases
        self.usage, self.metrics, self.clock = usage, metrics, clock
        # A failed segment waits in the queue before its next delivery: the kit's one backoff, capped
        # at a minute, jittered so a batch that failed together does not come back together.
        self.redelivery = Backoff(base_seconds=retry_seconds, cap_seconds=60.0)
        self.default_engine = default_engine
        self.path = path  # "api" on an API worker, "fleet" on a node
        self.before_delete: Callable[[WorkItem], None] = lambda item: None  # the translation fan-out
        self._lock = threading.Lock()
        self._counts = Counts()

    def counts(self) -> Counts:
        with self._lock:
            return self._counts

    def _add(self, processed: int = 0, cache_hits: int = 0, failures: int = 0, requeued: int = 0,
             wasted_gpu_seconds: float = 0.0) -> None:
        with self._lock:
            c = self._counts
            self._counts = Counts(c.processed + processed, c.cache_hits + cache_hits, c.failures + failures,
                                  c.requeued + requeued, c.wasted_gpu_seconds + wasted_gpu_seconds)

    def _record(self, item: WorkItem, outcome: str, started: float, *, tokens_out: int = 0, tokens_in: int = 0,
                engine: str = "", model: str = "", error: str = "", gpu_seconds: float = 0.0,
                ended: float | None = None) -> None:
        self.usage.add(UsageRecord(
            node=self.node, job=item.job, segment=item.segment, task=item.options.task,
            audio_seconds=item.seconds, tokens_in=tokens_in, tokens_out=tokens_out,
            engine=engine or self.default_engine(), model=model or item.options.model, started_at=started,
            ended_at=self.clock() if ended is None else ended, outcome=outcome, error=redact(error),
            gpu_seconds=round(gpu_seconds, 4),
            path="api" if (engine or self.default_engine()) in METERED_ENGINES else self.path()))
        self.metrics.count(outcome)

    # -- outcomes -----------------------------------------------------------------------------------
    def done(self, pending: Pending, outcome: str, started: float, *, engine: str, model: str,
             tokens_out: int = 0, tokens_in: int = 0, gpu_seconds: float = 0.0) -> None:
        """A result exists (``done``) or was found (``cache-hit``): fan out, then delete the message.

        A cache hit on a message that was handed back meanwhile (a drain began) counts nothing: the
        node did no work for it and the requeue is already counted. Engine work is always counted.
        """
        self.before_delete(pending.item)  # before the delete: a crash re-delivers, never loses them
        if outcome == "done":  # the engine's work happened: counted now, whatever the delete does
            self._count_done(pending, outcome, started, engine, model, tokens_out, tokens_in, gpu_seconds)
        settled = self.leases.settle(pending.message.id, self.queue.delete)
        if settled and pending.item.options.task == TRANSCRIBE:
            self._forget_queued(pending.item.segment)
        if settled and outcome != "done":
            self._count_done(pending, outcome, started, engine, model, tokens_out, tokens_in, gpu_seconds)

    def _count_done(self, pending: Pending, outcome: str, started: float, engine: str, model: str,
                    tokens_out: int, tokens_in: int, gpu_seconds: float) -> None:
        self._add(processed=1, cache_hits=1 if outcome == "cache-hit" else 0)
        self._record(pending.item, outcome, started, tokens_out=tokens_out, tokens_in=tokens_in,
                     engine=engine, model=model, gpu_seconds=gpu_seconds)

    def _forget_queued(self, segment: str) -> None:
        """The segment is out of the queue: a later submit of it must enqueue it again (best effort:
        a submit checks for the result first, so a marker left behind never blocks finished work)."""
        try:
            self.store.delete(queued_key(segment))
        except SpotkitError as err:
            log.warning("node=%s event=queued-marker-delete-failed segment=%s error=%r", self.node, segment, str(err))

    def failed(self, pending: Pending, error: str, started: float) -> None:
        """Back to the queue after a growing delay, with the reason; poisoned on the last delivery."""
        error = redact(error)
        delay = round(self.redelivery.delay(pending.message.dequeue_count))
        self._add(failures=1)
        self.leases.settle(pending.message.id, lambda m: self.queue.fail(
            m, error, retry_delay=delay, on_poison=self.record_poison))
        self._record(pending.item, "failed", started, error=error)
        log.warning("node=%s event=segment-failed segment=%s error=%r", self.node, pending.item.segment, error)

    def poison(self, message: Message, reason: str) -> None:
        """Bad work (garbage, missing or corrupt audio): retrying will not help."""
        reason = redact(reason)
        self.leases.settle(message.id, lambda m: self.queue.poison(m, reason, self.record_poison))

    def record_poison(self, message: Message, reason: str) -> None:
        """Remember why a segment was poisoned, for `spotkit status`; garbage has no segment."""
        reason = redact(reason)
        log.error("node=%s event=poisoned message=%s reason=%r", self.node, message.id, reason)
        try:
            item = WorkItem.decode(message.body)
        except BadMessage:
            return
        record = PoisonRecord(item.segment, item.job, reason, self.clock(), self.node)
        try:
            self.store.put(poison_key(item.segment, item.options.task, item.options.language), dump(record))
        except SpotkitError as err:  # the poison queue holds the reason too; `status` just will not show it
            log.warning("node=%s event=poison-record-failed segment=%s error=%r", self.node, item.segment, str(err))

    def requeue_leased(self, why: str, keep: frozenset[str] = frozenset()) -> int:
        """Hand back (visible at once) every leased message but those in *keep* (the running batch)."""
        requeued = 0
        for message_id in self.leases.ids():
            message = self.leases.get(message_id)
            if message is None or message_id in keep:
                continue
            try:
                released = self.leases.settle(message_id, lambda m: self.queue.release(m, 0))
            except SpotkitError as err:
                log.warning("node=%s could not requeue %s (its lease will expire instead): %s",
                            self.node, message_id, err)
                continue
            if released:
                requeued += 1
                self._add(requeued=1)
                try:
                    now = self.clock()
                    self._record(WorkItem.decode(message.body), "requeued", now, error=why, ended=now)
                except BadMessage:
                    pass
        return requeued

    def requeue_abandoned(self, batch: RunningBatch, now: float) -> tuple[int, float]:
        """Hand back a batch the engine is still running; its engine time so far is wasted."""
        wasted = max(0.0, now - batch.started)
        requeued, wasted_here = 0, 0.0
        for pending, share in zip(batch.pending, batch.shares(wasted), strict=True):
            if self.leases.settle(pending.message.id, lambda m: self.queue.release(m, 0)):
                requeued += 1
                wasted_here += share
                self._record(pending.item, "requeued", batch.started, gpu_seconds=share, ended=now,
                             error="drain: batch could not finish before the deadline")
        self._add(requeued=requeued, wasted_gpu_seconds=wasted_here)
        log.warning("node=%s event=batch-abandoned requeued=%d wasted_gpu_seconds=%.2f",
                    self.node, requeued, wasted)
        return requeued, wasted
