"""The agent's parts on their own: the batch slot's hand-over to a drain, the lifecycle's derived state,
the leases a heartbeat publishes."""

from __future__ import annotations

from pathlib import Path

from runtime.agent.batch import BatchSlot, Pending
from runtime.agent.leases import LeaseSet
from runtime.agent.lifecycle import Lifecycle
from runtime.queue.base import Message
from runtime.queue.sqlite_queue import SqliteQueue
from runtime.work import TaskOptions, WorkItem
from tests.conftest import FakeClock


def pending(n: int) -> list[Pending]:
    return [Pending(Message(f"m{i}", "{}", "r", 1), WorkItem("j", f"{i:064x}", TaskOptions(), 10.0))
            for i in range(n)]


def test_a_batch_being_settled_is_neither_abandoned_nor_over() -> None:
    """Between the engine's return and the last delete, a drain must not hand the messages back
    (their results are being written) nor call the node drained."""
    clock = FakeClock()
    slot = BatchSlot(0.1, clock)
    batch = slot.begin(pending(2), lambda: True)
    assert batch is not None and slot.running() is batch
    clock.now += 4.0
    assert slot.settle(batch) == 4.0
    assert slot.abandon() is None  # too late to abandon
    assert slot.running() is batch  # still counts: the drain waits
    slot.end(batch)
    assert slot.running() is None
    assert slot.predict(10.0) == (0.7 * 0.1 + 0.3 * 4.0 / 20.0) * 10.0  # learned from the batch


def test_an_abandoned_batch_is_thrown_away() -> None:
    slot = BatchSlot(0.1, FakeClock())
    batch = slot.begin(pending(1), lambda: True)
    assert batch is not None and slot.abandon() is batch
    assert slot.running() is None and slot.settle(batch) is None


def test_no_batch_starts_once_a_drain_began() -> None:
    slot = BatchSlot(0.1, FakeClock())
    assert slot.begin(pending(1), lambda: False) is None and slot.running() is None


def test_state_is_derived_from_its_owners() -> None:
    life = Lifecycle()
    assert life.state == "starting"
    life.report("working")
    life.begin_drain(exit_by=100.0)
    life.report("idle")  # the loop cannot hide a drain
    assert life.state == "draining"
    life.mark_drained()
    assert life.state == "drained" and not life.may_exit(0.0)  # not asked to exit
    life.exit_when_drained()
    assert not life.may_exit(50.0)  # the watcher has not finished the sequence
    assert life.may_exit(100.0)  # … but its time is up
    life.finish_sequence()
    assert life.may_exit(50.0)
    assert life.resume() and life.state == "idle"
    life.end(failed=False)
    assert life.state == "stopped" and life.stop.is_set()


def test_the_published_receipt_is_the_current_one_after_every_renewal(tmp_path: Path) -> None:
    clock = FakeClock()
    queue = SqliteQueue(tmp_path / "q.db", clock=clock)
    queue.send("a")
    queue.send("b")
    leases = LeaseSet(queue, clock)
    for message in queue.receive(2, 60):
        leases.add(message, 60)
    first = leases.published()
    leases.tag(first[0].message_id, "seg-a", "job-a")
    clock.now += 20
    assert leases.renew_all(60) == 2
    renewed = leases.published()
    assert [h.message_id for h in renewed] == [h.message_id for h in first]
    assert all(new.pop_receipt != old.pop_receipt for new, old in zip(renewed, first, strict=True))
    assert [h.expires_at for h in renewed] == [clock.now + 60] * 2
    assert (renewed[0].segment, renewed[0].job, renewed[1].segment) == ("seg-a", "job-a", "")
    assert leases.settle(renewed[0].message_id, queue.delete)
    assert [h.message_id for h in leases.published()] == [renewed[1].message_id]
