"""The agent's parts on their own: the batch slot's hand-over to a drain, the lifecycle's derived state."""

from __future__ import annotations

from runtime.agent.batch import BatchSlot, Pending
from runtime.agent.lifecycle import Lifecycle
from runtime.queue.base import Message
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
