"""The leases nodes hold, as their heartbeats publish them: for on-call to see a dead node's work and
hand it back now instead of waiting out its leases (docs/runbooks/stuck-leases.md).

An Azure Storage queue shows only visible messages and changes a leased one only with its current pop
receipt, so a killed node's work is out of reach until each lease runs out (``lease_seconds``). Every
agent therefore publishes what it holds — message id, current receipt, expiry, segment and job
(`runtime.records.HeldLease`) — with each heartbeat; `release` makes those messages visible at once
through the queue's own `WorkQueue.release`, with the published receipts.

Handing back a *live* node's leases is refused unless forced: the node would lose its batch mid-way
(its result is still written write-if-absent, so nothing is corrupted — the work is just done twice).
A node is live while its heartbeat is fresh and it has not said it stopped or failed; for a live but
stuck node, ``spotkit node drain NODE --deadline 0`` is the way that requeues its work in order.

On SQS (``refuses_stale_receipts=False``) a published receipt stays usable after another node has
leased the message again, so releasing the same node's leases twice makes that work visible while
it is being done: a duplicate delivery (results are write-if-absent), never a loss.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from runtime.errors import LeaseLost, QueueError, SpotkitError
from runtime.fleet_status import agent_state
from runtime.queue.base import Message, WorkQueue
from runtime.records import Heartbeat, HeldLease, read_heartbeats
from runtime.store.base import ObjectStore

RELEASED, ALREADY_MOVED, FAILED = "released", "already moved", "failed"


def utc(at: float) -> str:
    """A date and time on-call can compare with logs and the portal."""
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class NodeLeases:
    """One node's leases as its last heartbeat published them, judged at *now*."""

    beat: Heartbeat
    now: float
    stale_after: float

    @property
    def age(self) -> float:
        return self.now - self.beat.updated_at

    @property
    def alive(self) -> bool:
        """Still renewing its leases itself: handing them back would cut its batch short."""
        return self.beat.is_fresh(self.now, self.stale_after)

    @property
    def state(self) -> str:
        """As `spotkit node list` shows it (``silent`` once the heartbeat is stale)."""
        return agent_state(self.beat, self.now, self.stale_after)

    @property
    def unpublished(self) -> int:
        """In-flight segments without published leases: an agent from before leases were published
        holds work that only its lease expiry gives back."""
        return 0 if self.beat.leases else len(self.beat.in_flight)

    def rows(self) -> list[dict[str, object]]:
        """One row per lease for ``--json``: the fields of `spotkit node list` plus the lease's."""
        return [{"node": self.beat.node, "state": self.state, "seconds_since_heartbeat": round(self.age, 1),
                 "heartbeat_at": self.beat.updated_at, "releasable": not self.alive,
                 "message_id": lease.message_id, "pop_receipt": lease.pop_receipt, "job": lease.job,
                 "segment": lease.segment, "expires_at": lease.expires_at, "expired": lease.expires_at <= self.now}
                for lease in self.beat.leases]


def held_leases(beats: list[Heartbeat], now: float, stale_after: float, node: str | None = None) -> list[NodeLeases]:
    """Every node's published leases (or only *node*'s), sorted by node. A *node* that never sent a
    heartbeat is an error: a typo must not read as "holds nothing"."""
    found = sorted((NodeLeases(beat, now, stale_after) for beat in beats), key=lambda n: n.beat.node)
    if node is None:
        return found
    mine = [n for n in found if n.beat.node == node]
    if not mine:
        known = ", ".join(n.beat.node for n in found) or "none"
        raise SpotkitError(f"no node {node!r} has sent a heartbeat; known nodes: {known}")
    return mine


def check_releasable(held: NodeLeases, force: bool) -> None:
    """Refuse (one line, what to do instead) what release must not do: cut a live node's batch short
    unless forced, or claim to release work the node never published."""
    node = held.beat.node
    if held.alive and held.beat.leases and not force:
        raise SpotkitError(
            f"{node} is alive ({held.beat.state}, heartbeat {held.age:.0f} s ago): releasing its leases would "
            f"hand its batch to another node mid-way. If it is stuck, `spotkit node drain {node} --deadline 0`; "
            f"if you know it is gone, wait until its heartbeat is {held.stale_after:.0f} s old, or --force")
    if held.unpublished:
        expires = f", the first at {utc(held.beat.lease_expires_at)}" if held.beat.lease_expires_at else ""
        raise SpotkitError(
            f"{node} runs spotkit {held.beat.version}, which does not publish its leases: its "
            f"{held.unpublished} in-flight segments come back when their leases run out{expires}")


@dataclass(frozen=True)
class Released:
    """What became of one published lease: `RELEASED`, `ALREADY_MOVED` (its receipt is no longer current:
    leased again, finished, or renewed after the node's last heartbeat) or `FAILED` (the queue's error)."""

    lease: HeldLease
    outcome: str
    error: str = ""


def release(queue: WorkQueue, held: NodeLeases) -> list[Released]:
    """Make every lease *held* publishes visible now, with its published receipt.

    The messages are released with no error and an empty body, which leaves their stored content (the
    work item and its last error) as it is; their delivery count already counts the dead node's try.
    A transient queue failure is reported per message and the rest are still tried; a permanent one
    (no such queue, not authorised) would fail every message alike and is raised.
    """
    done: list[Released] = []
    for lease in held.beat.leases:
        try:
            queue.release(Message(lease.message_id, "", lease.pop_receipt, 0), delay=0)
            done.append(Released(lease, RELEASED))
        except LeaseLost:
            done.append(Released(lease, ALREADY_MOVED))
        except QueueError as err:
            if not err.transient:
                raise
            done.append(Released(lease, FAILED, str(err)))
    return done


def read_held(store: ObjectStore, stale_after: float, node: str | None = None,
              now: float | None = None) -> list[NodeLeases]:
    """`held_leases` of the heartbeats in *store* now."""
    return held_leases(read_heartbeats(store), time.time() if now is None else now, stale_after, node)
