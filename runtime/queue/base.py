"""The queue contract every backend honours, and the delivery policy built on it once.

Semantics (Azure Storage queues, which the embedded backend imitates):

* ``receive`` leases up to *n* visible messages for ``visibility_timeout`` seconds. Each lease comes
  with a fresh pop receipt and increments the message's dequeue count.
* ``renew`` extends the lease and returns the message with a new pop receipt; ``release`` makes it
  visible again after ``delay`` seconds (0 = now) and records the last error; ``delete`` removes it.
  All three need the *current* pop receipt and raise `LeaseLost` otherwise — the message has been
  leased by someone else (or deleted) and the stale holder must let go.
* Delivery is at least once; consumers must be idempotent (spotkit writes results write-if-absent).
* A message delivered more than ``max_deliveries`` times, or failed on its last allowed delivery,
  moves to ``<queue>-poison`` together with its last error (the Azure Functions convention,
  implemented here because it is not a storage feature).
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass

PoisonHook = Callable[["Message", str], None]


@dataclass(frozen=True)
class Message:
    id: str
    body: str
    pop_receipt: str
    dequeue_count: int
    last_error: str | None = None
    unreadable: str = ""  # why the stored content could not be read as text: poisoned on receipt


@dataclass(frozen=True)
class QueueDepth:
    """How much is in a queue, split as far as the backend can say (for on-call: `spotkit fleet status`).

    ``visible`` and ``oldest_enqueued_at`` are None where the backend cannot say — shown as unknown,
    never as a made-up 0. *Visible* messages wait for a consumer; the rest are leased (or waiting out
    a retry delay: a released message is invisible until then, as on Azure).
    """

    total: int  # visible + leased (Azure: its approximate message count)
    visible: int | None
    oldest_enqueued_at: float | None  # when the oldest waiting message was enqueued

    @property
    def leased(self) -> int | None:
        return None if self.visible is None else max(0, self.total - self.visible)


@dataclass(frozen=True)
class PoisonedMessage:
    """What the poison queue holds: the original body, why, and where it came from. One definition
    for `WorkQueue.poison` (the writer) and `runtime.queue.replay` (the reader)."""

    body: str
    error: str
    dequeue_count: int
    source_queue: str
    poisoned_at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> PoisonedMessage:
        """Parse one poison-queue message; `ValueError` if it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("body"), str):
            raise ValueError("not a poisoned message (no body)")
        return PoisonedMessage(data["body"], str(data.get("error", "")), int(data.get("dequeue_count", 0)),
                               str(data.get("source_queue", "")), float(data.get("poisoned_at", 0.0)))


def decode_stored(raw: bytes | str) -> tuple[str, str | None, str]:
    """(body, last error, why unreadable) from the stored bytes of a message, whoever wrote them.

    Content that is not UTF-8 text keeps a readable rendering as its body (for the poison record)
    and says why it cannot be work; `WorkQueue.receive` poisons it at once, alone.
    """
    if isinstance(raw, str):
        return (*decode_content(raw), "")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return raw.decode("utf-8", "backslashreplace"), None, f"message content is not UTF-8 text ({err})"
    return (*decode_content(text), "")


def encode_content(body: str, last_error: str | None, prior_deliveries: int = 0) -> str:
    """The stored form: the body plus the last error, so a requeued message carries its history.

    *prior_deliveries* is for backends that cannot rewrite a message in place (SQS): they re-send it
    with its history, and the new message's own delivery count adds to the deliveries before it."""
    content: dict[str, object] = {"spotkit": 1, "body": body, "last_error": last_error}
    if prior_deliveries:
        content["prior"] = prior_deliveries
    return json.dumps(content)


def prior_deliveries(content: str) -> int:
    """The deliveries before this copy of a re-sent message (0 for anything else)."""
    try:
        data = json.loads(content)
    except ValueError:
        return 0
    prior = data.get("prior", 0) if isinstance(data, dict) and data.get("spotkit") == 1 else 0
    return prior if isinstance(prior, int) and not isinstance(prior, bool) and prior > 0 else 0


def decode_content(content: str) -> tuple[str, str | None]:
    """Inverse of `encode_content`; content written by anyone else is taken as a bare body."""
    try:
        data = json.loads(content)
    except ValueError:
        return content, None
    if isinstance(data, dict) and data.get("spotkit") == 1 and isinstance(data.get("body"), str):
        error = data.get("last_error")
        return data["body"], error if isinstance(error, str) else None
    return content, None


@dataclass(frozen=True)
class QueueCapabilities:
    """What a backend's service can and cannot do of the contract above; the contract suite tests each
    backend against exactly what it declares (tests/runtime/test_queue_contract.py).

    * ``refuses_stale_receipts`` — renew, release and delete with a receipt that is no longer the
      current one raise `LeaseLost`. Where False (SQS accepts any receipt the message ever had), the
      backend refuses only what it can see itself (its own leases that ran out), and a stale receipt
      from elsewhere succeeds: the agent deletes only after its result is written
      write-if-absent, so a stale delete removes finished work only, and a stale renew or release
      costs a duplicate delivery (the work done twice), never a lost or duplicated result.
    * ``updates_in_place`` — release can rewrite the stored content (the last error) and the
      message keeps its id. Where False the backend emulates it: a copy carrying the error and the
      deliveries so far is sent and the original deleted, so the message id changes.
    * ``dates_waiting`` — `depth` gives the oldest waiting message's enqueue time.
    * ``counts_waiting`` — `depth` tells waiting from leased messages at any depth (Azure: only
      while fewer than 32 wait, as far as one peek sees).
    * ``peeks`` — `peek` sees messages without leasing them. Where False it is emulated with a
      zero-second lease, which counts as a delivery (used on the poison queue only).
    """

    refuses_stale_receipts: bool = True
    updates_in_place: bool = True
    dates_waiting: bool = True
    counts_waiting: bool = True
    peeks: bool = True


FULL_CONTRACT = QueueCapabilities()


class WorkQueue(ABC):
    """A named queue with leases, pop receipts, dequeue counts and a poison queue."""

    capabilities: QueueCapabilities = FULL_CONTRACT

    def __init__(self, name: str, max_deliveries: int = 5) -> None:
        self.name = name
        self.max_deliveries = max_deliveries
        self._ops: Counter[str] = Counter()

    # -- what it cost: one count per service call, by kind (bench/queue, docs/scale.md) -------------
    def operations(self) -> Counter[str]:
        """Service calls made through this queue (and its poison queue), by kind: ``send``,
        ``receive``, ``renew``, ``release``, ``delete``, ``poison`` (any call on the poison queue) and
        ``observe`` (counts, depth, peeks)."""
        return Counter(self._ops)

    def _count(self, kind: str, calls: int = 1) -> None:
        self._ops["poison" if self.name.endswith("-poison") and kind != "observe" else kind] += calls

    def _share_count(self, other: WorkQueue) -> WorkQueue:
        """Make *other* (this queue's poison queue) count into this queue's operations."""
        other._ops = self._ops
        return other

    # -- backend primitives ------------------------------------------------------------------
    @abstractmethod
    def send(self, body: str) -> None:
        """Append a message, visible at once."""

    def send_many(self, bodies: list[str]) -> None:
        """Append several messages; backends with a batch call (SQS: 10 a call) override this."""
        for body in bodies:
            self.send(body)

    @abstractmethod
    def _lease(self, n: int, visibility_timeout: int) -> list[Message]:
        """Lease up to *n* visible messages (no poison check)."""

    @abstractmethod
    def renew(self, message: Message, visibility_timeout: int) -> Message:
        """Extend the lease; returns the message with its new pop receipt. `LeaseLost` if stale."""

    @abstractmethod
    def release(self, message: Message, delay: int = 0, error: str | None = None) -> None:
        """Give the message back, visible after *delay* s, remembering *error*. `LeaseLost` if stale."""

    @abstractmethod
    def delete(self, message: Message) -> None:
        """Remove a handled message. `LeaseLost` if the receipt is stale."""

    @abstractmethod
    def approximate_count(self) -> int:
        """Messages in the queue, visible or leased (Azure's approximate message count)."""

    @abstractmethod
    def depth(self) -> QueueDepth:
        """Visible and leased messages and the oldest waiting one's age, as far as the backend can say."""

    @abstractmethod
    def peek(self, n: int) -> list[Message]:
        """Up to *n* visible messages, without leasing them (no receipt, no dequeue count change)."""

    def take(self, n: int, visibility_timeout: int) -> list[Message]:
        """Lease up to *n* messages *without* the poison policy: for operator tools on the poison queue."""
        return self._lease(n, visibility_timeout)

    @abstractmethod
    def poison_queue(self) -> WorkQueue:
        """The ``<name>-poison`` queue on the same backend."""

    @abstractmethod
    def ensure(self) -> None:
        """Create the queue and its poison queue if they do not exist (idempotent)."""

    def close(self) -> None:
        """Release connections; the default has none."""

    # -- policy, the same for every backend ---------------------------------------------------
    def receive(
        self, n: int, visibility_timeout: int, on_poison: PoisonHook | None = None
    ) -> list[Message]:
        """Lease up to *n* messages; those delivered too often go to the poison queue instead."""
        kept: list[Message] = []
        for message in self._lease(n, visibility_timeout):
            if message.unreadable:
                self.poison(message, message.unreadable, on_poison)
            elif message.dequeue_count > self.max_deliveries:
                reason = (
                    f"delivered {message.dequeue_count} times without completing; last error: "
                    f"{message.last_error or 'none recorded (the consumer stopped mid-task)'}"
                )
                self.poison(message, reason, on_poison)
            else:
                kept.append(message)
        return kept

    def fail(
        self,
        message: Message,
        error: str,
        retry_delay: int = 0,
        on_poison: PoisonHook | None = None,
    ) -> bool:
        """Record a failed attempt: requeue with *error*, or poison on the last delivery.

        Returns True when the message was poisoned.
        """
        if message.dequeue_count >= self.max_deliveries:
            self.poison(message, error, on_poison)
            return True
        self.release(message, delay=retry_delay, error=error)
        return False

    def poison(self, message: Message, reason: str, on_poison: PoisonHook | None = None) -> None:
        """Move a message to ``<name>-poison`` with *reason*; it keeps its body for a replay."""
        record = PoisonedMessage(message.body, reason, message.dequeue_count, self.name, time.time())
        self.poison_queue().send(record.to_json())
        if on_poison is not None:
            on_poison(message, reason)
        self.delete(message)
