"""One logical work queue spread over N backend queues (``…?shards=N``): past one queue's throughput.

An Azure Storage queue targets 2,000 messages/s and an SQS standard queue is effectively unbounded
per queue but metered per call; either way one queue is a single hot spot. ``?shards=N`` makes the
queue ``NAME`` the N queues ``NAME-s0`` … ``NAME-s{N-1}`` (each with its own ``-poison`` queue) on
the same backend, and this class presents them as one `WorkQueue`:

* **send** spreads messages round-robin from a random first shard, so several submitters together
  fill every shard evenly; `send_many` groups bodies per shard and keeps the backend's batching.
* **receive** starts at the next shard on every call and fills the batch from the shards after it,
  so each agent visits every shard in turn and no shard is left to one agent (fair draining).
* **message ids** are ``<shard>:<id>``: renew, release, delete and poison go to the shard that
  leased the message, and so do leases published in heartbeats (`runtime.queue.held`).
* **poison** lands in the poisoning shard's own poison queue; `poison_queue` is the sharded view
  of all of them, so ``spotkit queue poisoned|requeue|purge`` see every shard.
* **counts and depth** are sums, so the controller's observation and ``spotkit fleet status`` are of
  the whole queue; the oldest waiting message is the oldest of the shards' (unknown if any is).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

from runtime.errors import LeaseLost
from runtime.queue.base import Message, PoisonHook, QueueCapabilities, QueueDepth, WorkQueue

MAX_SHARDS = 64


def shard_name(name: str, index: int) -> str:
    return f"{name}-s{index}"


class ShardedQueue(WorkQueue):
    def __init__(self, name: str, shards: list[WorkQueue], max_deliveries: int = 5) -> None:
        super().__init__(name, max_deliveries)
        if not shards:
            raise ValueError("a sharded queue needs at least one shard")
        self.shards = shards
        self._send_at = random.randrange(len(shards))
        self._receive_at = random.randrange(len(shards))

    def operations(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for shard in self.shards:
            total.update(shard.operations())
        return total

    @property
    def capabilities(self) -> QueueCapabilities:  # type: ignore[override]
        return self.shards[0].capabilities

    # -- routing ---------------------------------------------------------------------------
    def _outer(self, index: int, message: Message) -> Message:
        return replace(message, id=f"{index}:{message.id}")

    def _route(self, message: Message) -> tuple[WorkQueue, Message]:
        index, sep, inner = message.id.partition(":")
        if not sep or not index.isdigit() or int(index) >= len(self.shards):
            raise LeaseLost(f"message {message.id}: not a message of the {len(self.shards)} shards of {self.name}")
        return self.shards[int(index)], replace(message, id=inner)

    def _next_send(self) -> int:
        index = self._send_at
        self._send_at = (index + 1) % len(self.shards)
        return index

    # -- the contract, shard by shard --------------------------------------------------------
    def send(self, body: str) -> None:
        self.shards[self._next_send()].send(body)

    def send_many(self, bodies: list[str]) -> None:
        groups: dict[int, list[str]] = {}
        for body in bodies:
            groups.setdefault(self._next_send(), []).append(body)
        for index, group in groups.items():
            self.shards[index].send_many(group)

    def _gather(self, n: int, visibility_timeout: int, raw: bool) -> list[Message]:
        start = self._receive_at
        self._receive_at = (start + 1) % len(self.shards)
        got: list[Message] = []
        for step in range(len(self.shards)):
            if len(got) >= n:
                break
            index = (start + step) % len(self.shards)
            shard = self.shards[index]
            leased = shard.take(n - len(got), visibility_timeout) if raw else shard._lease(n - len(got),
                                                                                          visibility_timeout)
            got += [self._outer(index, m) for m in leased]
        return got

    def _lease(self, n: int, visibility_timeout: int) -> list[Message]:
        return self._gather(n, visibility_timeout, raw=False)

    def take(self, n: int, visibility_timeout: int) -> list[Message]:
        return self._gather(n, visibility_timeout, raw=True)

    def renew(self, message: Message, visibility_timeout: int) -> Message:
        shard, inner = self._route(message)
        return replace(shard.renew(inner, visibility_timeout), id=message.id)

    def release(self, message: Message, delay: int = 0, error: str | None = None) -> None:
        shard, inner = self._route(message)
        shard.release(inner, delay, error)

    def delete(self, message: Message) -> None:
        shard, inner = self._route(message)
        shard.delete(inner)

    def poison(self, message: Message, reason: str, on_poison: PoisonHook | None = None) -> None:
        shard, inner = self._route(message)
        shard.poison(inner, reason, None if on_poison is None else (lambda _m, why: on_poison(message, why)))

    def approximate_count(self) -> int:
        return sum(shard.approximate_count() for shard in self.shards)

    def depth(self) -> QueueDepth:
        depths = [shard.depth() for shard in self.shards]
        visible = None if any(d.visible is None for d in depths) else sum(d.visible or 0 for d in depths)
        waiting = [d for d in depths if d.visible != 0]  # shards that may hold waiting work
        dated = [d.oldest_enqueued_at for d in waiting]
        oldest = min(dated) if dated and all(at is not None for at in dated) else None  # type: ignore[type-var]
        return QueueDepth(sum(d.total for d in depths), visible, oldest)

    def peek(self, n: int) -> list[Message]:
        seen: list[Message] = []
        for index, shard in enumerate(self.shards):
            if len(seen) >= n:
                break
            seen += [self._outer(index, m) for m in shard.peek(n - len(seen))]
        return seen

    def poison_queue(self) -> ShardedQueue:
        return ShardedQueue(f"{self.name}-poison", [shard.poison_queue() for shard in self.shards],
                            self.max_deliveries)

    def ensure(self) -> None:
        for shard in self.shards:
            shard.ensure()

    def close(self) -> None:
        for shard in self.shards:
            shard.close()
