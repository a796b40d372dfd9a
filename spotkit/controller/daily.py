"""Once-a-day controller duties (usage compaction, media retention): each runs on a UTC day's first
round, beside the rounds rather than inside one (a duty can take minutes on a large fleet), and a
failure is logged and tried again on the next round. The controller is the one process that runs all
month, so it is the one that keeps these appointments."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from runtime.records import day_of

log = logging.getLogger("spotkit.controller")
Actions = list[dict[str, str]]


class DailyDuty(Protocol):
    def tick(self, now: float) -> Actions: ...


@dataclass
class OncePerDay:
    """Runs *work(now)* on each UTC day's first round; the actions it took go to the audit log (in the
    background, the round records only that it started)."""

    name: str
    work: Callable[[float], Actions]
    background: bool = True
    _done_on: str = field(default="", init=False)  # the UTC day whose first round ran it
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def tick(self, now: float) -> Actions:
        today = day_of(now)
        if self._done_on == today or (self._thread is not None and self._thread.is_alive()):
            return []
        self._done_on = today
        if self.background:
            self._thread = threading.Thread(target=self._run, args=(now,), name=self.name, daemon=True)
            self._thread.start()
            return [{"action": self.name, "started": "background"}]
        return self._run(now)

    def _run(self, now: float) -> Actions:
        try:
            return self.work(now)
        except Exception as err:  # the next round tries again
            self._done_on = ""
            log.warning("event=%s-failed error=%r", self.name, str(err))
            return []

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
