"""The poison queue for people on call: what is in it and why, and putting work back once its cause
is fixed (a segment's audio restored, an API key rotated, a model deployed).

Requeued work is a new message on the queue it came from, so it starts with a fresh delivery count;
its poison record (`runtime.records.PoisonRecord`, what `spotkit status` shows) is removed. Nothing
leaves the poison queue except by moving it back or by an explicit `purge`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from runtime.errors import BadMessage, SpotkitError
from runtime.queue.base import Message, PoisonedMessage, WorkQueue
from runtime.records import poison_key
from runtime.store.base import ObjectStore
from runtime.work import WorkItem

LEASE_SECONDS = 60


@dataclass(frozen=True)
class Poisoned:
    id: str
    record: PoisonedMessage | None  # None: not a message spotkit poisoned (shown raw)
    raw: str
    item: WorkItem | None  # the work item, when the body is one

    def as_dict(self) -> dict[str, object]:
        r = self.record
        return {"id": self.id, "error": r.error if r else "", "poisoned_at": r.poisoned_at if r else None,
                "deliveries": r.dequeue_count if r else None, "source_queue": r.source_queue if r else "",
                "job": self.item.job if self.item else "", "segment": self.item.segment if self.item else "",
                "task": self.item.options.task if self.item else "", "body": self.raw if r is None else r.body}


def _parse(message_id: str, text: str) -> Poisoned:
    try:
        record = PoisonedMessage.from_json(text)
    except (ValueError, TypeError):
        return Poisoned(message_id, None, text, None)
    try:
        item: WorkItem | None = WorkItem.decode(record.body)
    except BadMessage:
        item = None
    return Poisoned(message_id, record, text, item)


def list_poisoned(queue: WorkQueue, limit: int = 32) -> list[Poisoned]:
    """What the poison queue holds (visible messages; Azure shows at most 32 at a time)."""
    return [_parse(m.id, m.body) for m in queue.poison_queue().peek(limit)]


def requeue(queue: WorkQueue, store: ObjectStore, ids: Iterable[str] = (),
            everything: bool = False) -> tuple[int, list[str]]:
    """Move poisoned messages (by id, or all) back to *queue*; returns how many moved and the ids not found."""
    poison = queue.poison_queue()

    def move(message: Message, parsed: Poisoned) -> None:
        queue.send(parsed.record.body if parsed.record else message.body)
        poison.delete(message)
        if parsed.item is not None:
            store.delete(poison_key(parsed.item.segment, parsed.item.options.task, parsed.item.options.language))

    return _each_selected(poison, ids, everything, move, "requeue")


def purge(queue: WorkQueue, ids: Iterable[str] = (), everything: bool = False) -> tuple[int, list[str]]:
    """Delete poisoned messages (by id, or all) for good; returns how many went and the ids not found.

    The segments' poison records stay, so `spotkit status` still says which segments failed and why;
    only an explicit `spotkit queue purge` (which asks first) ever deletes work from a queue."""
    poison = queue.poison_queue()
    return _each_selected(poison, ids, everything, lambda message, _: poison.delete(message), "purge")


def _each_selected(poison: WorkQueue, ids: Iterable[str], everything: bool,
                   act: Callable[[Message, Poisoned], None], verb: str) -> tuple[int, list[str]]:
    """Apply *act* to each selected poisoned message; what was looked at and not selected is visible
    again at once. Returns how many were acted on and the wanted ids that were not there."""
    wanted = set(ids)
    if not wanted and not everything:
        raise SpotkitError(f"name the poisoned message ids to {verb} (from `spotkit queue poisoned`), or --all")
    done, seen, leased_back = 0, set(), []
    while True:
        batch = poison.take(32, LEASE_SECONDS)
        if not batch or all(m.id in seen for m in batch):
            leased_back += batch
            break
        for message in batch:
            seen.add(message.id)
            if not everything and message.id not in wanted:
                leased_back.append(message)
                continue
            act(message, _parse(message.id, message.body))
            done += 1
        if not everything and wanted <= seen:
            break
    for message in leased_back:
        poison.release(message, delay=0)
    return done, sorted(wanted - seen)
