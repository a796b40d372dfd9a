"""On-call's side of published leases (`runtime.queue.held`): which node counts as gone, what release
refuses, and release with the receipts an agent's `LeaseSet` published — on the embedded queue and on
Azure Storage (Azurite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.agent.leases import LeaseSet
from runtime.errors import SpotkitError
from runtime.queue.held import ALREADY_MOVED, RELEASED, NodeLeases, check_releasable, held_leases, read_held, release
from runtime.records import Heartbeat, HeldLease, dump, heartbeat_key
from runtime.store.file_store import FileStore
from tests.conftest import QueueUnderTest

NOW = 1_800_000_000.0
STALE_AFTER = 30.0


def beat(node: str, state: str = "working", age: float = 0.0, leases: list[HeldLease] | None = None) -> Heartbeat:
    held = leases if leases is not None else [HeldLease(f"{node}-m1", "r1", NOW + 100, "seg1", "job1")]
    return Heartbeat(node, state, "9.9", NOW - age, [h.segment for h in held], leases=held)


def test_nodes_are_judged_alive_by_heartbeat_age_and_state() -> None:
    nodes = held_leases([beat("b-stale", age=31), beat("a-fresh", age=5), beat("c-stopped", "stopped", age=1)],
                        NOW, STALE_AFTER)
    assert [(n.beat.node, n.alive, n.state) for n in nodes] == [
        ("a-fresh", True, "working"), ("b-stale", False, "silent"), ("c-stopped", False, "stopped")]
    [row] = nodes[1].rows()
    assert row["releasable"] and not row["expired"] and row["seconds_since_heartbeat"] == 31.0
    assert row["message_id"] == "b-stale-m1" and row["pop_receipt"] == "r1" and row["segment"] == "seg1"
    [expired] = NodeLeases(beat("n", age=40), NOW + 100, STALE_AFTER).rows()
    assert expired["expired"]
    assert [n.beat.node for n in held_leases([beat("x"), beat("y")], NOW, STALE_AFTER, "y")] == ["y"]


def test_an_unknown_node_is_an_error_not_an_empty_list() -> None:
    with pytest.raises(SpotkitError, match="no node 'typo' has sent a heartbeat; known nodes: n1, n2"):
        held_leases([beat("n2"), beat("n1")], NOW, STALE_AFTER, "typo")
    with pytest.raises(SpotkitError, match="known nodes: none"):
        held_leases([], NOW, STALE_AFTER, "n1")


def test_a_live_nodes_leases_are_refused_unless_forced() -> None:
    alive = NodeLeases(beat("n1", age=2), NOW, STALE_AFTER)
    with pytest.raises(SpotkitError, match=r"n1 is alive \(working, heartbeat 2 s ago\).*node drain n1.*--force"):
        check_releasable(alive, force=False)
    check_releasable(alive, force=True)
    check_releasable(NodeLeases(beat("n1", age=31), NOW, STALE_AFTER), force=False)
    check_releasable(NodeLeases(beat("n1", "failed", age=1), NOW, STALE_AFTER), force=False)
    check_releasable(NodeLeases(beat("n1", "idle", age=1, leases=[]), NOW, STALE_AFTER), force=False)  # nothing


def test_work_an_older_agent_did_not_publish_is_never_called_released() -> None:
    old = Heartbeat("n1", "working", "0.1", NOW - 60, ["s1", "s2"], lease_expires_at=NOW + 30)
    held = NodeLeases(old, NOW, STALE_AFTER)
    assert held.unpublished == 2
    with pytest.raises(SpotkitError, match="does not publish its leases: its 2 in-flight segments come back"):
        check_releasable(held, force=True)


def test_release_uses_the_published_receipts(queue_ut: QueueUnderTest, tmp_path: Path) -> None:
    """On each backend: what the agent published is enough to hand its work back at once, the bodies
    untouched; a message finished meanwhile, or leased again, is "already moved"."""
    queue = queue_ut.queue
    for body in ("one", "two", "three", "four"):
        queue.send(body)
    leases = LeaseSet(queue)
    for message in queue.receive(4, 300):
        leases.add(message, 300)
    assert leases.renew_all(300) == 4  # new receipts: the published ones must be these
    held = leases.published()
    store = FileStore(tmp_path / "store")
    store.ensure()
    store.put(heartbeat_key("victim"), dump(Heartbeat("victim", "working", "1", NOW - 60, leases=held)))
    assert leases.settle(held[0].message_id, queue.delete)  # finished just before the node died

    [node] = read_held(store, STALE_AFTER, "victim", now=NOW)
    check_releasable(node, force=False)
    outcomes = release(queue, node)
    assert [(o.lease.message_id, o.outcome) for o in outcomes] == [
        (held[0].message_id, ALREADY_MOVED), *((h.message_id, RELEASED) for h in held[1:])]
    back = queue.receive(32, 300)  # at once: the lease was 300 s
    assert sorted(m.body for m in back) == ["four", "three", "two"]
    assert all(m.dequeue_count == 2 for m in back)
    again = [o.outcome for o in release(queue, node)]
    if queue.capabilities.refuses_stale_receipts:
        assert again == [ALREADY_MOVED] * 4  # leased again since
    else:  # SQS takes the old receipts: the three are visible again (a duplicate delivery, no loss)
        assert again == [ALREADY_MOVED, RELEASED, RELEASED, RELEASED]
        assert sorted(m.body for m in queue.receive(32, 300)) == ["four", "three", "two"]
