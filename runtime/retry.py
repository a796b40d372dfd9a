"""The one retry policy: jittered, capped exponential backoff, and what counts as worth retrying.

Whether to retry is decided by the error's *kind* (`runtime.errors.SpotkitError.transient`), never by
its text: a store outage whose every message names a different temporary file is still one outage.
Waiting goes through an injected ``wait`` (an `threading.Event.wait` that a stop cuts short, or a fake
clock's advance in tests), so nothing here sleeps on its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from runtime.errors import SpotkitError

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delay before retry *n* (1-based): ``base × 2^(n-1)``, at most ``cap``, with ±``jitter`` spread."""

    base_seconds: float = 0.5
    cap_seconds: float = 60.0
    jitter: float = 0.2  # a fraction of the delay, so a fleet hit by one outage does not retry in step
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        plain = min(self.cap_seconds, self.base_seconds * 2.0 ** max(0, attempt - 1))
        spread = plain * self.jitter
        jittered = plain + float(self.rng.uniform(-spread, spread))
        return max(0.0, min(self.cap_seconds, jittered))


class GaveUp(SpotkitError):
    """A transient failure outlasted the retry budget; carries the last error."""

    transient = True


def retry_transient(call: Callable[[], T], backoff: Backoff, wait: Callable[[float], bool],
                    give_up_after_seconds: float, clock: Callable[[], float],
                    on_retry: Callable[[int, SpotkitError, float], None] = lambda n, err, delay: None) -> T:
    """Run *call*; on a transient `SpotkitError` wait and try again, until it succeeds, a non-transient
    error is raised, *wait* returns True (stop or drain: give up now) or the budget is spent (`GaveUp`)."""
    started = clock()
    attempt = 0
    while True:
        try:
            return call()
        except SpotkitError as err:
            if not err.transient:
                raise
            attempt += 1
            delay = backoff.delay(attempt)
            if clock() - started + delay > give_up_after_seconds:
                raise GaveUp(f"gave up after {attempt} attempts in {clock() - started:.0f} s: {err}") from err
            on_retry(attempt, err, delay)
            if wait(delay):
                raise GaveUp(f"interrupted while retrying: {err}") from err
