"""``?shards=N``: one logical queue over N backend queues — spread, fair draining, poison and status
across shards, sums for the controller — and 1,000 segments done by 4 agents over 4 shards."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest

from runtime.config import Settings
from runtime.errors import ConfigError
from runtime.fleet.load import run_agents, synthetic_job
from runtime.jobs import job_status
from runtime.queue import open_queue
from runtime.queue.held import RELEASED, NodeLeases, release
from runtime.queue.replay import list_poisoned, requeue
from runtime.queue.sharded import ShardedQueue
from runtime.records import Heartbeat, HeldLease
from runtime.store.file_store import FileStore
from runtime.work import TaskOptions
from tests.support.azurite import Azurite
from tests.support.moto_server import REGION, MotoServer


def sharded_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest, shards: int) -> tuple[str, dict[str, str]]:
    name = f"q{uuid.uuid4().hex[:10]}"
    if kind == "sqlite":
        return f"sqlite://{tmp_path / 'queue.db'}?queue={name}&shards={shards}", {}
    if kind == "azurite":
        service: Azurite = request.getfixturevalue("azurite")
        return (f"azure-queue://devstoreaccount1/{name}?shards={shards}",
                {"AZURE_STORAGE_CONNECTION_STRING": service.connection_string})
    moto: MotoServer = request.getfixturevalue("moto")
    return f"sqs://{REGION}/{name}?shards={shards}", moto.env()


@pytest.fixture(params=["sqlite", "azurite", "moto"])
def sharded(request: pytest.FixtureRequest, tmp_path: Path) -> ShardedQueue:
    url, env = sharded_url(str(request.param), tmp_path, request, 4)
    queue = open_queue(url, max_deliveries=5, env=env)
    assert isinstance(queue, ShardedQueue)
    queue.ensure()
    return queue


def test_sends_spread_evenly_and_receives_visit_every_shard(sharded: ShardedQueue) -> None:
    sharded.send_many([f"m{i}" for i in range(20)])
    sharded.send("m20")
    assert sorted(shard.approximate_count() for shard in sharded.shards) == [5, 5, 5, 6]
    assert sharded.approximate_count() == sharded.depth().total == 21  # what the controller observes
    firsts = [sharded.receive(1, 60)[0] for _ in range(4)]
    assert sorted(m.id.split(":")[0] for m in firsts) == ["0", "1", "2", "3"]  # one from each shard in turn
    rest = sharded.receive(32, 60)
    assert len(rest) == 17 and sharded.receive(32, 60) == []
    for message in firsts + rest:
        sharded.delete(message)
    assert sharded.approximate_count() == 0 and all(s.approximate_count() == 0 for s in sharded.shards)


def test_renew_release_and_published_leases_route_to_their_shard(sharded: ShardedQueue) -> None:
    sharded.send_many(["a", "b", "c", "d"])
    held = [sharded.renew(m, 60) for m in sharded.receive(4, 60)]
    beat = Heartbeat("gone", "working", "1", 0.0,
                     leases=[HeldLease(m.id, m.pop_receipt, 0.0, "", "") for m in held])
    outcomes = release(sharded, NodeLeases(beat, 1000.0, 30.0))  # what `spotkit queue release` does
    assert [o.outcome for o in outcomes] == [RELEASED] * 4
    assert sorted(m.body for m in sharded.receive(32, 60)) == ["a", "b", "c", "d"]


def test_poison_and_replay_work_across_shards(sharded: ShardedQueue, tmp_path: Path) -> None:
    sharded.send_many(["one", "two", "three", "four"])
    poisoned: list[str] = []
    for message in sharded.receive(4, 60):
        sharded.poison(message, f"failed {message.body}", lambda m, _why: poisoned.append(m.id))
    assert all(":" in message_id for message_id in poisoned)  # the hook sees the sharded message
    assert sharded.approximate_count() == 0
    assert sharded.poison_queue().approximate_count() == 4
    assert sum(1 for shard in sharded.shards if shard.poison_queue().approximate_count()) == 4
    found = list_poisoned(sharded, 32)
    assert sorted(p.record.error for p in found if p.record) == [f"failed {b}" for b in
                                                                 ("four", "one", "three", "two")]
    store = FileStore(tmp_path / "store")
    moved, missing = requeue(sharded, store, everything=True)
    assert (moved, missing) == (4, [])
    assert sharded.approximate_count() == 4 and sharded.poison_queue().approximate_count() == 0


@pytest.mark.parametrize("raw", ["0", "x", "65"])
def test_a_bad_shard_count_is_one_clear_error(raw: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shards="):
        open_queue(f"sqlite://{tmp_path / 'q.db'}?shards={raw}")


def test_a_thousand_segments_four_shards_four_agents(settings: Settings, tmp_path: Path) -> None:
    """All done, every shard drained, status right across shards; each agent took work from every shard."""
    from dataclasses import replace

    fast = replace(settings, transcriber="simulated", simulated_speed=1000.0, batch_size=8, idle_seconds=1.0)
    url = f"sqlite://{tmp_path / 'queue.db'}?shards=4"
    submitter = open_queue(url)
    store = FileStore(tmp_path / "store")
    store.ensure()
    manifest = synthetic_job(submitter, store, 1000, TaskOptions(model=fast.model))
    assert isinstance(submitter, ShardedQueue)
    assert [shard.approximate_count() for shard in submitter.shards] == [250] * 4
    before = job_status(store, manifest.job)
    assert (before.total, before.queued, before.done) == (1000, 1000, 0)
    queues = [open_queue(url) for _ in range(4)]
    run = run_agents(fast, queues, [FileStore(tmp_path / "store") for _ in range(4)])
    assert run.codes == [0] * 4
    assert [shard.approximate_count() for shard in submitter.shards] == [0] * 4
    assert submitter.poison_queue().approximate_count() == 0
    status = job_status(store, manifest.job)
    assert status.complete and (status.done, status.total, status.queued, status.poisoned) == (1000, 1000, 0, [])
    per_agent = [Counter(q.operations()) for q in queues]
    assert all(ops["delete"] > 0 for ops in per_agent)  # every agent did a share of the work
    assert sum(ops["delete"] for ops in per_agent) == 1000  # each segment deleted once: none done twice
