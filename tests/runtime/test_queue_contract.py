"""One contract, every queue backend: the embedded SQLite queue, Azure Storage (Azurite) and SQS (moto).

Where a service cannot offer part of the contract, its backend says so in `QueueCapabilities`
and these tests hold it to exactly the weaker guarantee it declares (see there for why it is safe)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.errors import LeaseLost
from runtime.queue.base import Message, WorkQueue
from tests.conftest import QueueUnderTest, make_queue


def test_send_receive_delete(queue_ut: QueueUnderTest) -> None:
    q = queue_ut.queue
    q.send("hello")
    [msg] = q.receive(5, 30)
    assert (msg.body, msg.dequeue_count, msg.last_error) == ("hello", 1, None)
    assert q.receive(5, 30) == []  # leased: invisible to others
    q.delete(msg)
    assert q.approximate_count() == 0


def test_receive_respects_batch_size_and_counts(queue_ut: QueueUnderTest) -> None:
    q = queue_ut.queue
    for i in range(5):
        q.send(f"m{i}")
    first = q.receive(3, 30)
    rest = q.receive(10, 30)
    assert len(first) == 3
    assert sorted(m.body for m in first + rest) == [f"m{i}" for i in range(5)]
    assert q.approximate_count() == 5  # leased messages still count


def test_expired_lease_redelivers(queue_ut: QueueUnderTest) -> None:
    q = queue_ut.queue
    q.send("work")
    [first] = q.receive(1, 1)
    queue_ut.advance(1.6)
    [again] = q.receive(1, 30)
    assert again.id == first.id
    assert again.dequeue_count == 2
    assert again.pop_receipt != first.pop_receipt


def test_renewal_keeps_message_hidden(queue_ut: QueueUnderTest) -> None:
    q = queue_ut.queue
    q.send("long job")
    [msg] = q.receive(1, 1)
    renewed = q.renew(msg, 5)
    queue_ut.advance(1.6)  # past the first lease, inside the renewed one
    assert q.receive(1, 30) == []
    q.delete(renewed)
    assert q.approximate_count() == 0


def test_release_makes_visible_now_and_keeps_error(queue_ut: QueueUnderTest) -> None:
    q = queue_ut.queue
    q.send("try me")
    [msg] = q.receive(1, 60)
    q.release(msg, 0, error="engine blew up")
    [again] = q.receive(1, 60)
    assert (again.body, again.last_error, again.dequeue_count) == ("try me", "engine blew up", 2)
    # Rewritten in place, or (SQS) emulated by a copy that carries the error and the count: a new id.
    assert (again.id == msg.id) is q.capabilities.updates_in_place
    assert q.approximate_count() == 1


def test_release_without_error_keeps_the_message(queue_ut: QueueUnderTest) -> None:
    """What a drain and `spotkit queue release` do: the same message, visible again, its history kept."""
    q = queue_ut.queue
    q.send("hand back")
    [msg] = q.receive(1, 60)
    q.release(msg, 0, error="first try failed")
    [again] = q.receive(1, 60)
    q.release(again, 0)
    [third] = q.receive(1, 60)
    assert (third.id, third.body, third.last_error, third.dequeue_count) == (again.id, "hand back",
                                                                               "first try failed", 3)


def test_send_many_sends_each_once(queue_ut: QueueUnderTest) -> None:
    q = queue_ut.queue
    q.send_many([f"m{i}" for i in range(23)])  # more than two SQS batches of 10
    got = q.receive(30, 30)
    got += q.receive(30, 30)
    assert sorted(m.body for m in got) == sorted(f"m{i}" for i in range(23))


def test_stale_receipt_after_renewal_is_refused(queue_ut: QueueUnderTest) -> None:
    q = queue_ut.queue
    q.send("x")
    [msg] = q.receive(1, 30)
    renewed = q.renew(msg, 30)
    if q.capabilities.refuses_stale_receipts:
        with pytest.raises(LeaseLost):
            q.delete(msg)
        q.delete(renewed)
    else:  # SQS keeps the receipt handle across a renewal: the old one is the current one
        assert renewed.pop_receipt == msg.pop_receipt
        q.delete(msg)
    assert q.approximate_count() == 0


def test_stale_receipt_after_redelivery_loses_nothing(queue_ut: QueueUnderTest) -> None:
    """The first holder's lease expires and a second consumer takes the message: the first can
    neither delete nor requeue it, and the second still completes it."""
    q = queue_ut.queue
    q.send("contended")
    [old] = q.receive(1, 1)
    queue_ut.advance(1.6)
    [new] = q.receive(1, 30)
    # The holder itself is refused on every backend (SQS: by the queue object's own lease clock).
    for action in (q.delete, lambda m: q.release(m, 0), lambda m: q.renew(m, 30)):
        with pytest.raises(LeaseLost):
            action(old)
    assert q.receive(1, 30) == []  # still leased by the new holder, not duplicated
    if not q.capabilities.refuses_stale_receipts:
        # The weaker guarantee: the service takes the stale receipt from anyone else (another process
        # with a heartbeat's receipts). A renewal keeps the message hidden (work done twice at worst);
        # a delete comes only after a result was written, so it removes finished work; the current
        # holder's delete then finds it gone, quietly.
        other = make_queue_like(q)
        other.renew(old, 30)
        assert q.receive(1, 30) == []
        other.delete(old)
    q.delete(new)
    assert q.approximate_count() == 0


def make_queue_like(q: WorkQueue) -> WorkQueue:
    """Another process's view of the same SQS queue: it has no record of the leases *q* took."""
    from runtime.queue.sqs_queue import SqsQueue

    assert isinstance(q, SqsQueue)
    return SqsQueue(q.region, q.name, q.max_deliveries, q._env)


def test_a_deleted_message_cannot_be_renewed(queue_ut: QueueUnderTest) -> None:
    """Every backend refuses to renew what is gone: the agent's renewer drops it (`LeaseSet.renew_all`)."""
    q = queue_ut.queue
    q.send("done")
    [msg] = q.receive(1, 30)
    q.delete(msg)
    with pytest.raises(LeaseLost):
        q.renew(msg, 30)


def test_five_failures_land_in_poison_with_error(queue_ut: QueueUnderTest) -> None:
    q = queue_ut.queue
    q.send("doomed")
    poisoned: list[tuple[Message, str]] = []
    for attempt in range(1, 6):
        [msg] = q.receive(1, 30)
        assert msg.dequeue_count == attempt
        went = q.fail(msg, f"failure {attempt}", on_poison=lambda m, r: poisoned.append((m, r)))
        assert went is (attempt == 5)
    assert q.approximate_count() == 0
    [dead] = q.poison_queue().receive(5, 30)
    record = json.loads(dead.body)
    assert record["body"] == "doomed"
    assert record["error"] == "failure 5"
    assert record["dequeue_count"] == 5
    assert record["source_queue"] == q.name
    assert [r for _, r in poisoned] == ["failure 5"]


def test_redelivered_past_limit_is_poisoned_on_receive(
    queue_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A consumer that dies on every delivery never calls fail(): receive() poisons it instead."""
    made = make_queue(queue_kind, tmp_path, request, max_deliveries=1)
    q = made.queue
    q.send("crashes its consumer")
    [msg] = q.receive(1, 1)
    q.release(msg, 1, error="killed mid-batch")  # what a dying consumer's last words look like
    made.advance(1.6)
    assert q.receive(1, 30) == []
    [dead] = q.poison_queue().receive(1, 30)
    record = json.loads(dead.body)
    assert "delivered 2 times" in record["error"]
    assert "killed mid-batch" in record["error"]


def test_foreign_content_is_a_bare_body(queue_ut: QueueUnderTest) -> None:
    q = queue_ut.queue
    q.send("not json at all {")
    [msg] = q.receive(1, 30)
    assert msg.body == "not json at all {"


@pytest.mark.parametrize("content", [b"\x00\xff\xfe binary", "caf\udce9".encode("utf-8", "surrogateescape")])
def test_an_undecodable_row_is_poisoned_alone(tmp_path: Path, content: bytes) -> None:
    """A BLOB or invalid UTF-8 row (written by anything but spotkit) goes to the poison queue with its
    reason; the message leased beside it is delivered as usual."""
    import sqlite3

    from runtime.queue.sqlite_queue import SqliteQueue

    q = SqliteQueue(tmp_path / "q.db")
    q.send("innocent")
    with sqlite3.connect(tmp_path / "q.db") as conn:
        conn.execute("INSERT INTO messages (id, queue, content, visible_at) VALUES ('bad', 'work', ?, 0)",
                     (content,))
    poisoned: list[tuple[str, str]] = []
    [msg] = q.receive(5, 30, on_poison=lambda m, why: poisoned.append((m.id, why)))
    assert msg.body == "innocent"
    [(bad_id, why)] = poisoned
    assert bad_id == "bad" and "not UTF-8 text" in why
    [record] = q.poison_queue().receive(5, 30)
    assert json.loads(record.body)["error"] == why
    assert q.approximate_count() == 1  # only the innocent one, leased


def test_depth_splits_visible_and_leased_and_dates_the_oldest_waiting(queue_ut: QueueUnderTest) -> None:
    q = queue_ut.queue
    dated = q.capabilities.dates_waiting
    empty = q.depth()
    assert (empty.total, empty.visible, empty.leased, empty.oldest_enqueued_at) == (0, 0, 0, None)
    q.send("first")
    first = q.depth().oldest_enqueued_at
    assert (first is not None) is dated  # SQS dates nothing outside CloudWatch: unknown, never made up
    queue_ut.advance(1.6)  # Azure dates messages to the second
    q.send("second")
    both = q.depth()
    assert (both.total, both.visible, both.leased, both.oldest_enqueued_at) == (2, 2, 0, first)
    [leased] = q.receive(1, 30)
    assert leased.body == "first"
    one_left = q.depth()
    assert (one_left.total, one_left.visible, one_left.leased) == (2, 1, 1)
    if dated:
        assert one_left.oldest_enqueued_at is not None and first is not None
        assert one_left.oldest_enqueued_at > first  # the second's
    else:
        assert one_left.oldest_enqueued_at is None


def test_depth_of_a_deep_queue_says_what_the_backend_can(queue_ut: QueueUnderTest) -> None:
    """Azure's peek sees at most 32 messages: past that, how many wait is unknown, not a guess."""
    q = queue_ut.queue
    q.send_many([f"m{i}" for i in range(33)])
    depth = q.depth()
    assert depth.total == 33 and (depth.oldest_enqueued_at is not None) is q.capabilities.dates_waiting
    assert (depth.visible, depth.leased) == ((33, 0) if q.capabilities.counts_waiting else (None, None))


def test_sqlite_depth_dates_by_its_clock_and_a_file_from_before_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    from runtime.queue.sqlite_queue import SqliteQueue
    from tests.conftest import FakeClock

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the schema before enqueued_at, with a row in it
        conn.executescript("CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
                           "queue TEXT NOT NULL, content TEXT NOT NULL, visible_at REAL NOT NULL, "
                           "dequeue_count INTEGER NOT NULL DEFAULT 0, pop_receipt TEXT);"
                           "INSERT INTO messages (id, queue, content, visible_at) VALUES ('old', 'work', 'x', 0);")
    clock = FakeClock()
    q = SqliteQueue(path, clock=clock)
    SqliteQueue(path, clock=clock)  # a second opener finds the column there
    assert q.depth().oldest_enqueued_at is None  # a waiting row of unknown age: unknown, not a younger age
    q.send("new")
    assert q.depth().oldest_enqueued_at is None
    [old] = q.receive(1, 30)
    assert old.id == "old"
    assert q.depth().oldest_enqueued_at == clock.now  # the waiting one is dated
    clock.now += 5
    q.poison(old, "test")
    assert q.poison_queue().depth().oldest_enqueued_at == clock.now  # poisoned now, dated now
