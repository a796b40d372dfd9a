"""Several segments per queue message (``…?pack=K``): fewer queue operations per segment, same guarantees.

At one message per segment every segment costs a send, its share of a receive, a renewal every few
seconds while it waits in a batch, and a delete — over 2 service calls a segment (bench/queue), and
Azure Storage has no batch send or delete to amortise them. Packing up to K work items into one
message divides sends, receives, renewals and deletes by up to K; the agent does not notice:

* `receive` leases packs and hands out one *part* per work item, with the pack's receipt and an id
  ``<message id>#<part>``; each part's delivery count is the pack's plus the part's own history.
* Settling a part (delete, release, fail, poison) is recorded here. When the pack's last part is
  settled, the pack is settled once: all done → one delete; all handed back without an error (a
  drain) → one release of the pack as it is; otherwise the *unfinished remainder* is sent as a new
  pack (with each part's error and deliveries) and then the old pack is deleted. A crash between
  the two only duplicates the remainder (results are write-if-absent).
* `renew` of a pack's parts renews the pack once a round (on its first unsettled part); the others
  take the new receipt.

The eviction guarantee is unchanged: a drain hands every unfinished part back before the node goes
(the remainder is visible at once), and a node killed outright leaves the whole pack to reappear
when its lease runs out, its finished parts then answered from the store. Poison records stay one
per segment (the poison queue is not packed), so replay works as before. Counts (`approximate_count`,
`depth`) are of messages: up to K segments each, as docs/scale.md says.

Leases published by a heartbeat name parts; `spotkit queue release` from another process releases
the pack with the first part's receipt and reports the others "already moved" (or, on SQS, released).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field, replace

from runtime.queue.base import Message, QueueCapabilities, QueueDepth, WorkQueue

MAX_PACK = 32
_KEY = "spotkit_pack"


@dataclass(frozen=True)
class Part:
    body: str
    error: str | None = None
    prior: int = 0  # deliveries of this part before the pack now carrying it


def encode_pack(parts: list[Part]) -> str:
    return json.dumps({_KEY: 1, "parts": [{"body": p.body, "error": p.error, "prior": p.prior} for p in parts]})


def decode_pack(body: str) -> list[Part]:
    """The parts of a pack; any other body (a message sent unpacked, by anyone) is a pack of one."""
    try:
        data = json.loads(body)
    except ValueError:
        return [Part(body)]
    if not isinstance(data, dict) or data.get(_KEY) != 1 or not isinstance(data.get("parts"), list):
        return [Part(body)]
    parts = []
    for raw in data["parts"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("body"), str):
            return [Part(body)]  # damaged: handed on whole, to be poisoned as a bad work item
        error, prior = raw.get("error"), raw.get("prior", 0)
        parts.append(Part(raw["body"], error if isinstance(error, str) else None,
                          prior if isinstance(prior, int) and prior > 0 else 0))
    return parts or [Part(body)]


@dataclass
class _Pack:
    message: Message  # the pack as leased, with its current receipt
    parts: list[Part]
    done: set[int] = field(default_factory=set)
    again: dict[int, tuple[str | None, int]] = field(default_factory=dict)  # part -> (error, delay)

    def settled(self) -> bool:
        return len(self.done) + len(self.again) == len(self.parts)

    def first_open(self) -> int:
        return min(i for i in range(len(self.parts)) if i not in self.done and i not in self.again)


class PackedQueue(WorkQueue):
    def __init__(self, inner: WorkQueue, pack: int) -> None:
        super().__init__(inner.name, inner.max_deliveries)
        if not 1 <= pack <= MAX_PACK:
            raise ValueError(f"pack must be 1..{MAX_PACK}")
        self.inner, self.pack = inner, pack
        self._packs: dict[str, _Pack] = {}
        self._lock = threading.Lock()

    @property
    def capabilities(self) -> QueueCapabilities:  # type: ignore[override]
        return self.inner.capabilities

    def operations(self) -> Counter[str]:
        return self.inner.operations()

    # -- sending ------------------------------------------------------------------------------
    def send(self, body: str) -> None:
        self.inner.send(encode_pack([Part(body)]))

    def send_many(self, bodies: list[str]) -> None:
        self.inner.send_many([encode_pack([Part(b) for b in bodies[i:i + self.pack]])
                              for i in range(0, len(bodies), self.pack)])

    # -- leasing ------------------------------------------------------------------------------
    def _lease(self, n: int, visibility_timeout: int) -> list[Message]:
        leased = self.inner._lease(max(1, -(-n // self.pack)), visibility_timeout)
        out: list[Message] = []
        with self._lock:
            for message in leased:
                if message.unreadable:
                    out.append(replace(message, id=f"{message.id}#0"))
                    self._packs[message.id] = _Pack(message, [Part(message.body)])
                    continue
                parts = decode_pack(message.body)
                self._packs[message.id] = _Pack(message, parts)
                out += [Message(f"{message.id}#{i}", part.body, message.pop_receipt,
                                message.dequeue_count + part.prior,
                                part.error if part.error is not None else (message.last_error if len(parts) == 1
                                                                           else None))
                        for i, part in enumerate(parts)]
        return out

    def take(self, n: int, visibility_timeout: int) -> list[Message]:
        return self._lease(n, visibility_timeout)

    def peek(self, n: int) -> list[Message]:
        return [replace(m, body=decode_pack(m.body)[0].body) for m in self.inner.peek(n)]

    # -- settling parts -------------------------------------------------------------------------
    def _split(self, message: Message) -> tuple[str, int]:
        real, sep, index = message.id.rpartition("#")
        if not sep or not index.isdigit():
            return message.id, -1
        return real, int(index)

    def renew(self, message: Message, visibility_timeout: int) -> Message:
        real, index = self._split(message)
        with self._lock:
            pack = self._packs.get(real)
            if pack is None:
                renewed = self.inner.renew(replace(message, id=real), visibility_timeout)
                return replace(renewed, id=message.id)
            if index == pack.first_open():
                pack.message = self.inner.renew(pack.message, visibility_timeout)
            return replace(message, pop_receipt=pack.message.pop_receipt)

    def release(self, message: Message, delay: int = 0, error: str | None = None) -> None:
        self._settle(message, (error, delay))

    def delete(self, message: Message) -> None:
        self._settle(message, None)

    def _settle(self, message: Message, again: tuple[str | None, int] | None) -> None:
        """Record one part's outcome (*again* = (error, delay) to hand it back, None = done); the last
        part's settles the pack. A failure there un-records the part, so a retry settles it again."""
        real, index = self._split(message)
        with self._lock:
            pack = self._packs.get(real)
            if pack is None or index < 0:  # not leased here (`spotkit queue release`): the pack as a whole
                outer = replace(message, id=real)
                if again is None:
                    self.inner.delete(outer)
                else:
                    self.inner.release(outer, again[1], again[0])
                return
            if again is None:
                pack.done.add(index)
            else:
                pack.again[index] = again
            if not pack.settled():
                return
            try:
                self._finish(pack)
            except BaseException:
                pack.done.discard(index)
                pack.again.pop(index, None)
                raise
            del self._packs[real]

    def _finish(self, pack: _Pack) -> None:
        if not pack.again:
            self.inner.delete(pack.message)
            return
        if not pack.done and all(error is None for error, _ in pack.again.values()):
            self.inner.release(pack.message, max(delay for _, delay in pack.again.values()))
            return
        count = pack.message.dequeue_count
        remainder = [Part(pack.parts[i].body, error if error is not None else pack.parts[i].error,
                          count + pack.parts[i].prior) for i, (error, _) in sorted(pack.again.items())]
        self.inner.send(encode_pack(remainder))
        self.inner.delete(pack.message)

    # -- the rest passes through ----------------------------------------------------------------
    def approximate_count(self) -> int:
        return self.inner.approximate_count()

    def depth(self) -> QueueDepth:
        return self.inner.depth()

    def poison_queue(self) -> WorkQueue:
        return self.inner.poison_queue()

    def ensure(self) -> None:
        self.inner.ensure()

    def close(self) -> None:
        self.inner.close()

