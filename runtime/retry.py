"""The one retry policy: jittered, capped exponential backoff, and what counts as worth retrying.

Whether to retry is decided by the error's *kind* (`runtime.errors.SpotkitError.transient`), never by
its text: a store outage whose every message names a different temporary file is still one outage.
A server's ``Retry-After`` (carried by the error as ``retry_after``) lengthens the wait, up to the cap.
Waiting goes through an injected ``wait`` (an `threading.Event.wait` that a stop cuts short, or a fake
clock's advance in tests), so nothing here sleeps on its own.

Where a client library retries by itself (the openai SDK, azure-core), it is configured from the same
`RetryPolicy` (`openai_max_retries`, `azure_core_options`) instead of being wrapped: never two layers.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from runtime.errors import SpotkitError

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delay before retry *n* (1-based): ``base × 2^(n-1)``, at most ``cap``, shortened by a random
    fraction of up to ``jitter`` — below the cap too, so a fleet hit by one outage never retries in step."""

    base_seconds: float = 0.5
    cap_seconds: float = 60.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        plain = min(self.cap_seconds, self.base_seconds * 2.0 ** min(max(0, attempt - 1), 64))
        return max(0.0, plain * (1.0 - self.jitter * float(self.rng.random())))


class GaveUp(SpotkitError):
    """A transient failure outlasted the retry budget; ``last`` is the last error."""

    transient = True

    def __init__(self, message: str, last: SpotkitError) -> None:
        super().__init__(message)
        self.last = last


def plain_wait(seconds: float) -> bool:
    """A ``wait`` that nothing interrupts (background threads, one-shot CLI calls)."""
    time.sleep(seconds)
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one kind of call is retried.

    ``attempts`` counts the first try (1 = never retried: a poll loop that is its own retry);
    ``give_up_after_seconds`` bounds the time spent, whatever the count.
    """

    attempts: float = 4  # an int, or math.inf for "until the time budget is spent"
    backoff: Backoff = field(default_factory=Backoff)
    give_up_after_seconds: float = math.inf

    @property
    def retries(self) -> int:
        return 0 if self.attempts <= 1 else int(min(self.attempts - 1, 1000))

    def run(self, call: Callable[[], T], wait: Callable[[float], bool] = plain_wait,
            clock: Callable[[], float] = time.monotonic,
            on_retry: Callable[[int, SpotkitError, float], None] = lambda n, err, delay: None) -> T:
        """Run *call*; on a transient `SpotkitError` wait and try again, until it succeeds, a non-transient
        error is raised (as is), *wait* returns True (stop or drain: give up now), the attempts are used up
        or the time budget is spent (`GaveUp`, from the last error)."""
        started = clock()
        attempt = 0
        while True:
            try:
                return call()
            except SpotkitError as err:
                if not err.transient:
                    raise
                attempt += 1
                if attempt >= self.attempts:
                    if attempt == 1:
                        raise  # never retried: the error itself says what happened
                    raise GaveUp(f"gave up after {attempt} attempts: {err}", err) from err
                delay = self.backoff.delay(attempt)
                retry_after = getattr(err, "retry_after", None)
                if isinstance(retry_after, float | int) and math.isfinite(retry_after) and retry_after > 0:
                    delay = max(delay, min(float(retry_after), self.backoff.cap_seconds))
                if clock() - started + delay > self.give_up_after_seconds:
                    raise GaveUp(f"gave up after {attempt} attempts in {clock() - started:.0f} s: {err}", err) from err
                on_retry(attempt, err, delay)
                if wait(delay):
                    raise GaveUp(f"interrupted while retrying: {err}", err) from err

    def openai_max_retries(self) -> int:
        """The openai SDK's ``max_retries`` (it honours ``Retry-After`` and backs off with jitter itself)."""
        return self.retries

    def azure_core_options(self) -> dict[str, Any]:
        """azure-core's retry keywords (the compute client), from the same numbers."""
        return {"retry_total": self.retries, "retry_backoff_factor": self.backoff.base_seconds,
                "retry_backoff_max": self.backoff.cap_seconds}

    def azure_storage_options(self) -> dict[str, Any]:
        """azure-storage's ``ExponentialRetry`` keywords (queue, blob clients). Its own default waits 15 s
        before the first retry — half a Preempt notice — so it is always set from the policy."""
        return {"retry_total": self.retries, "initial_backoff": self.backoff.base_seconds, "increment_base": 2,
                "random_jitter_range": self.backoff.base_seconds * self.backoff.jitter}


# Per-call retries inside the Azure SDKs: a few quick tries at a reset connection or a 503. An outage
# that outlasts them is the caller's to ride out (the agent holds its leases and retries, docs/eviction.md).
AZURE_SDK_RETRY = RetryPolicy(4, Backoff(base_seconds=0.5, cap_seconds=8.0))
ONCE = RetryPolicy(attempts=1)  # for callers that are their own retry loop (a poller, a supervisor)


def retry_transient(call: Callable[[], T], backoff: Backoff, wait: Callable[[float], bool],
                    give_up_after_seconds: float, clock: Callable[[], float],
                    on_retry: Callable[[int, SpotkitError, float], None] = lambda n, err, delay: None) -> T:
    """`RetryPolicy.run` bounded by time only (an outage is retried for as long as the budget allows)."""
    return RetryPolicy(math.inf, backoff, give_up_after_seconds).run(call, wait, clock, on_retry)
