"""``?pack=K``: several work items per message, settled part by part, the pack once — on every backend."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.config import Settings
from runtime.fleet.load import run_agents, synthetic_job
from runtime.jobs import job_status
from runtime.queue import open_queue
from runtime.queue.packed import PackedQueue
from runtime.store.file_store import FileStore
from runtime.work import TaskOptions
from tests.conftest import make_queue


@pytest.fixture
def packed(queue_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> PackedQueue:
    return PackedQueue(make_queue(queue_kind, tmp_path, request, max_deliveries=2).queue, 4)


def test_items_travel_k_to_a_message_and_all_done_is_one_delete(packed: PackedQueue) -> None:
    packed.send_many([f"m{i}" for i in range(10)])
    assert packed.approximate_count() == 3  # messages, of up to 4 items each
    parts = packed.receive(8, 60)
    assert len(parts) == 8 and len({p.id.split("#")[0] for p in parts}) == 2
    before = packed.operations()["delete"]
    for part in parts:
        packed.delete(part)
    assert packed.operations()["delete"] - before == 2  # one per pack, not per item
    [a, b] = packed.receive(8, 60)
    assert sorted([a.body, b.body]) == ["m8", "m9"]
    packed.delete(a)
    packed.delete(b)
    assert packed.approximate_count() == 0


def test_a_round_of_renewals_renews_each_pack_once(packed: PackedQueue) -> None:
    packed.send_many(["a", "b", "c", "d"])
    parts = packed.receive(4, 60)
    before = packed.operations()["renew"]
    renewed = [packed.renew(p, 60) for p in parts]
    assert packed.operations()["renew"] - before == 1
    assert len({p.pop_receipt for p in renewed}) == 1
    for part in renewed:
        packed.delete(part)
    assert packed.approximate_count() == 0


def test_the_unfinished_remainder_is_sent_again_with_its_history(packed: PackedQueue) -> None:
    packed.send_many(["done1", "done2", "failed", "handed back"])
    parts = {p.body: p for p in packed.receive(4, 60)}
    packed.delete(parts["done1"])
    packed.delete(parts["done2"])
    packed.release(parts["failed"], 0, error="engine blew up")
    assert packed.approximate_count() == 1  # nothing settled for the pack until its last part is
    packed.release(parts["handed back"], 0)
    again = {p.body: p for p in packed.receive(4, 60)}
    assert sorted(again) == ["failed", "handed back"]
    assert (again["failed"].last_error, again["failed"].dequeue_count) == ("engine blew up", 2)
    assert (again["handed back"].last_error, again["handed back"].dequeue_count) == (None, 2)
    assert packed.approximate_count() == 1  # the old pack is gone, the remainder is one message


def test_a_drain_hands_the_pack_back_as_it_is(packed: PackedQueue) -> None:
    packed.send_many(["x", "y"])
    first = packed.receive(4, 60)
    for part in first:
        packed.release(part, 0)
    second = packed.receive(4, 60)
    assert [p.id for p in second] == [p.id for p in first]  # the same message, made visible again
    assert all(p.dequeue_count == 2 for p in second)


def test_failing_on_the_last_delivery_poisons_that_item_alone(packed: PackedQueue) -> None:
    packed.send_many(["good", "bad"])
    parts = {p.body: p for p in packed.receive(4, 60)}
    packed.release(parts["bad"], 0, error="first failure")
    packed.delete(parts["good"])
    [bad] = packed.receive(4, 60)
    assert bad.dequeue_count == 2
    assert packed.fail(bad, "second failure") is True  # max_deliveries=2
    assert packed.approximate_count() == 0
    [record] = packed.poison_queue().receive(4, 60)
    assert (json.loads(record.body)["body"], json.loads(record.body)["error"]) == ("bad", "second failure")


def test_packed_agents_finish_with_under_one_queue_operation_per_segment(settings: Settings, tmp_path: Path) -> None:
    fast = replace(settings, transcriber="simulated", simulated_speed=1000.0, batch_size=8, idle_seconds=0.5)
    url = f"sqlite://{tmp_path / 'queue.db'}?pack=8"
    store = FileStore(tmp_path / "store")
    store.ensure()
    submitter = open_queue(url)
    manifest = synthetic_job(submitter, store, 200, TaskOptions(model=fast.model))
    queues = [open_queue(url) for _ in range(2)]
    run = run_agents(fast, queues, [FileStore(tmp_path / "store") for _ in range(2)])
    assert run.codes == [0, 0]
    status = job_status(store, manifest.job)
    assert status.complete and status.done == 200 and status.poisoned == []
    work = ("send", "receive", "renew", "release", "delete", "poison")
    ops = submitter.operations() + run.operations
    assert ops["send"] == 25 and ops["delete"] == 25  # 200 items, 8 a message
    assert sum(ops[k] for k in work) / 200 < 1.0
