"""The agent's side of a drain: the steps the eviction watcher (`runtime.eviction.watcher`) executes,
from its own thread, while the agent's work loop keeps running.

The watcher owns the sequence and its decisions (`runtime.eviction.decision.react`); this object
only carries out each step on the agent's parts and decides nothing: begin (stop pulling, hand back
what the engine has not started), abandon the running batch, say whether the node holds nothing any
more, flush usage, mark the node drained (its final heartbeat says so), and release the process once
the watcher has recorded, alerted and acknowledged.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from runtime.agent.batch import BatchSlot
from runtime.agent.leases import LeaseSet
from runtime.agent.lifecycle import Lifecycle
from runtime.agent.settle import Settler
from runtime.eviction.decision import NodeTotals, NodeView
from runtime.usage import UsageLog

log = logging.getLogger("spotkit.agent")


class AgentDrain:
    """Implements `runtime.eviction.watcher.Drainable` for a real agent."""

    def __init__(self, node: str, lifecycle: Lifecycle, batches: BatchSlot, leases: LeaseSet, settler: Settler,
                 usage: UsageLog, beat: Callable[[], None], full_batch_seconds: float) -> None:
        self.node, self.lifecycle, self.batches, self.leases = node, lifecycle, batches, leases
        self.settler, self.usage, self.beat = settler, usage, beat
        self.full_batch_seconds = full_batch_seconds  # audio in a full batch: the next batch's prediction
        # Hooks for what shares the GPU (the vLLM supervisor): run in order, off the watcher's thread.
        self.on_drained: Callable[[], None] | None = None
        self.on_resumed: Callable[[], None] | None = None
        self._hooks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._hook_runner: threading.Thread | None = None

    def view(self, now: float, drained_for: str | None) -> NodeView:
        batch = self.batches.running()
        if batch is not None:
            return NodeView(now, batch.started, batch.predicted_seconds, drained_for)
        return NodeView(now, None, self.batches.predict(self.full_batch_seconds), drained_for)

    def begin_drain(self, reason: str, exit_by: float) -> int:
        """Stop pulling; hand back at once everything leased but the batch in the engine."""
        self.lifecycle.begin_drain(exit_by)
        log.warning("node=%s event=draining reason=%r", self.node, reason)
        running = self.batches.running()
        return self.settler.requeue_leased(f"drain: {reason}", keep=running.ids if running else frozenset())

    def abandon_batch(self, now: float) -> tuple[int, float]:
        batch = self.batches.abandon()
        return self.settler.requeue_abandoned(batch, now) if batch is not None else (0, 0.0)

    def is_settled(self) -> bool:
        """Draining, nothing in the engine that counts, no lease held."""
        return self.lifecycle.draining and self.batches.running() is None and len(self.leases) == 0

    def totals(self) -> NodeTotals:
        counts = self.settler.counts()
        return NodeTotals(counts.processed, counts.requeued, counts.wasted_gpu_seconds)

    def flush_usage(self) -> None:
        self.usage.flush()

    def mark_drained(self) -> None:
        """The node is drained: its state says so from now on, starting with this heartbeat."""
        self.lifecycle.mark_drained()
        self.beat()
        counts = self.settler.counts()
        logging.getLogger("spotkit.progress").info(
            "drained: %d segments done, %d handed back to the queue, %.1f s of engine time wasted",
            counts.processed, counts.requeued, counts.wasted_gpu_seconds)

    def release(self) -> None:
        """The watcher has run the whole sequence: the process may exit now if it was asked to."""
        self.lifecycle.finish_sequence()
        if self.on_drained is not None:  # e.g. stop vLLM: a drained node frees the GPU
            self._run_hook(self.on_drained)

    def hold(self, until: float | None) -> None:
        self.batches.hold(until)

    def resume(self) -> None:
        if self.lifecycle.resume():
            log.warning("node=%s event=resume (event cancelled)", self.node)
            if self.on_resumed is not None:  # e.g. bring vLLM back
                self._run_hook(self.on_resumed)

    def _run_hook(self, hook: Callable[[], None]) -> None:
        self._hooks.put(hook)
        if self._hook_runner is None:
            self._hook_runner = threading.Thread(target=self._hook_loop, name="drain-hooks", daemon=True)
            self._hook_runner.start()

    def _hook_loop(self) -> None:
        while True:
            hook = self._hooks.get()
            try:
                hook()
            except Exception as err:  # a failed hook (vLLM would not stop or start) must not end the node
                log.exception("node=%s event=drain-hook-failed error=%r", self.node, str(err))
