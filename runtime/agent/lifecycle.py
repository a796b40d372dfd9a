"""The agent's state as the fleet sees it, with one owner per part of it.

* the work loop reports what it is doing: ``starting``, ``idle``, ``working``, ``holding``;
* the drain — driven by the eviction watcher, which owns the drain sequence — says ``draining``
  when it begins and ``drained`` when the watcher declares it finished;
* `Agent.run` says ``stopped`` or ``failed`` when the process ends.

The state a heartbeat shows is derived from these (the end wins, then the drain, then the loop), so no
writer can overwrite another's: the loop setting ``working`` never hides a drain. Whether the process
exits once drained (``--exit-when-drained``, or a first SIGTERM) is kept here too, with the time by
which the watcher must have finished the drain sequence.
"""

from __future__ import annotations

import threading
import time


class Lifecycle:
    def __init__(self, exit_when_drained: bool = False) -> None:
        self._lock = threading.Lock()
        self._activity = "starting"
        self._drain = ""  # "" | "draining" | "drained"
        self._ended = ""  # "" | "stopped" | "failed"
        self._exit_when_drained = exit_when_drained
        self._exit_by: float | None = None  # the watcher must have finished the drain sequence by then
        self.stop = threading.Event()  # stop at once: requeue everything, exit
        self.sequence_done = threading.Event()  # the watcher ran the whole drain sequence

    @property
    def state(self) -> str:
        with self._lock:
            return self._ended or self._drain or self._activity

    def report(self, activity: str) -> None:
        """The work loop's own state; ignored while draining or once ended."""
        with self._lock:
            self._activity = activity

    # -- the drain (called for the watcher) ----------------------------------------------------------
    @property
    def draining(self) -> bool:
        """A drain is under way or done: pull nothing, start no batch."""
        with self._lock:
            return bool(self._drain)

    def begin_drain(self, exit_by: float) -> None:
        with self._lock:
            self._drain = self._drain or "draining"
            self._exit_by = exit_by
        self.sequence_done.clear()

    def mark_drained(self) -> None:
        with self._lock:
            self._drain = "drained"

    def nap(self, seconds: float) -> None:
        """Wait up to *seconds*, ending early on stop or when a drain begins (an idle agent's long
        pause between receives must not delay either by more than a quarter second)."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and not self.draining and (left := deadline - time.monotonic()) > 0:
            self.stop.wait(min(left, 0.25))

    def finish_sequence(self) -> None:
        self.sequence_done.set()

    def resume(self) -> bool:
        """The event was cancelled: back to work. True if a drain was under way."""
        with self._lock:
            was, self._drain, self._exit_by = bool(self._drain), "", None
        self.sequence_done.clear()
        return was

    # -- exiting ------------------------------------------------------------------------------------
    def exit_when_drained(self) -> None:
        """Exit once the drain sequence has run (a first SIGTERM asks for this)."""
        with self._lock:
            self._exit_when_drained = True

    def may_exit(self, now: float) -> bool:
        """Drained, asked to exit when drained, and the watcher finished the sequence (or ran out of time)."""
        with self._lock:
            if not (self._drain and self._exit_when_drained):
                return False
            late = self._exit_by is not None and now >= self._exit_by
        return self.sequence_done.is_set() or late

    def end(self, failed: bool) -> None:
        with self._lock:
            self._ended = "failed" if failed else "stopped"
        self.stop.set()
