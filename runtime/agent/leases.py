"""The agent's in-flight messages and their pop receipts, shared with the lease renewer thread.

Every queue call on a leased message goes through `LeaseSet.settle` or `renew_all`, under one lock,
so the renewer never swaps a pop receipt while the worker is deleting or releasing with the old one.
`published` is what the heartbeat carries: each held message with its current receipt, so on-call
can hand a dead node's work back (`spotkit queue release`) instead of waiting out its leases.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from runtime.errors import LeaseLost, QueueError
from runtime.queue.base import Message, WorkQueue
from runtime.records import HeldLease

log = logging.getLogger("spotkit.agent")


class LeaseSet:
    def __init__(self, queue: WorkQueue, clock: Callable[[], float] = time.time) -> None:
        self.queue = queue
        self.clock = clock
        self._held: dict[str, Message] = {}
        self._tags: dict[str, tuple[str, str]] = {}  # message id -> (segment id, job id), once parsed
        self._expires: dict[str, float] = {}  # message id -> when its lease runs out unless renewed
        self._lock = threading.Lock()

    def add(self, message: Message, lease_seconds: float) -> None:
        with self._lock:
            if message.id not in self._held:
                self._expires[message.id] = self.clock() + lease_seconds
            self._held[message.id] = message

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def get(self, message_id: str) -> Message | None:
        with self._lock:
            return self._held.get(message_id)

    def tag(self, message_id: str, segment: str, job: str = "") -> None:
        with self._lock:
            if message_id in self._held:
                self._tags[message_id] = (segment, job)

    def published(self) -> list[HeldLease]:
        """Every held message with its *current* pop receipt and lease expiry, for the heartbeat: taken
        under the lock, so a receipt is never one the renewer has just replaced."""
        with self._lock:
            return [HeldLease(m.id, m.pop_receipt, self._expires.get(m.id, 0.0), *self._tags.get(m.id, ("", "")))
                    for m in self._held.values()]

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def settle(self, message_id: str, action: Callable[[Message], object]) -> bool:
        """Run a final queue action (delete, release, fail, poison) with the current receipt.

        Returns False when the lease was already lost; the action is then skipped, because the
        message belongs to another consumer now. Any other failure (the queue is down) keeps the
        message held — renewed, and settled again on the next try — and is raised.
        """
        with self._lock:
            message = self._held.pop(message_id, None)
            tags = self._tags.pop(message_id, None)
            expires = self._expires.pop(message_id, None)
            if message is None:
                return False
            try:
                action(message)
                return True
            except LeaseLost as err:
                log.warning("lease lost on %s: %s (another node holds it; results are "
                            "write-if-absent, nothing duplicated)", message_id, err)
                return False
            except Exception:
                self._held[message_id] = message
                if tags is not None:
                    self._tags[message_id] = tags
                if expires is not None:
                    self._expires[message_id] = expires
                raise

    def messages(self) -> list[Message]:
        """The held messages, with their current pop receipts (work carried over a failed iteration)."""
        with self._lock:
            return list(self._held.values())

    def renew_all(self, visibility_timeout: int) -> int:
        """Extend every lease; drops those lost. Returns how many were renewed."""
        renewed = 0
        with self._lock:
            for message_id, message in list(self._held.items()):
                try:
                    self._held[message_id] = self.queue.renew(message, visibility_timeout)
                    self._expires[message_id] = self.clock() + visibility_timeout
                    renewed += 1
                except LeaseLost as err:
                    log.warning("lease lost on %s during renewal: %s", message_id, err)
                    del self._held[message_id]
                    self._tags.pop(message_id, None)
                    self._expires.pop(message_id, None)
                except QueueError as err:
                    log.warning("renewing %s failed, will retry: %s", message_id, err)
        return renewed
