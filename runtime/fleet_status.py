"""The fleet at a glance for on-call (``spotkit fleet status``): one typed `FleetStatus` assembled from
what was observed, and the problems in it.

Pure: `assemble` reads nothing and takes the time from the observations (`runtime.oncall.observe_fleet`
does the reading, with an injected clock), so what counts as stale or stuck is decided here once and
tested without waiting. A source that could not be read is kept as such (``unavailable``) and every
value it would have given is None — shown as unknown, never as a made-up 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from runtime.queue.base import QueueDepth
from runtime.records import AuditRecord, BootRecord, EvictionRecord, Heartbeat, RoutingRecord

# A node that drained or stopped is expected to fall silent (deallocated, shut down): say what it was.
QUIET_STATES = ("drained", "stopped", "failed")
# A slot that is off sends no heartbeats: its silence is no problem (what it still holds may be).
OFF_POWER = ("deallocated", "deallocating", "stopped")
EVICTION_WINDOW_SECONDS = 24 * 3600.0
RECENT_POISON_SECONDS = 3600.0  # a message poisoned this recently means the poison queue is growing
CRITICAL, WARNING = "critical", "warning"


def heartbeat_max_age(heartbeat_seconds: float) -> float:
    """When a heartbeat counts as stale: three intervals, and never under 30 s — the nodes' interval is
    their own setting, which the machine asking may not share."""
    return max(30.0, 3 * heartbeat_seconds)


def agent_state(beat: Heartbeat, now: float, stale_after: float) -> str:
    """The state a heartbeat says, or ``silent`` when it is stale and the node was not expected to stop."""
    return beat.state if beat.state in QUIET_STATES or now - beat.updated_at <= stale_after else "silent"


def holds_leases(beat: Heartbeat, now: float) -> bool:
    """The node's leases have not run out yet: its segments wait for it. A heartbeat without the expiry
    (0) but with segments in flight may hold them too; one whose expiry has passed holds nothing —
    its segments are back in the queue."""
    return beat.lease_expires_at > now or (beat.lease_expires_at == 0 and bool(beat.in_flight))


class SlotView(Protocol):
    """A slot as the controller's slot backend observes it (`spotkit.controller.slots.SlotState`)."""

    @property
    def name(self) -> str: ...

    @property
    def power(self) -> str: ...

    @property
    def size(self) -> str: ...

    @property
    def address(self) -> str: ...


@dataclass(frozen=True)
class Observations:
    """Everything `assemble` needs, read at *at*; None (and an entry in *unavailable*) where a source failed."""

    at: float
    queue_name: str
    slots: Sequence[SlotView] | None
    heartbeats: Sequence[Heartbeat] = ()
    drain_requested: frozenset[str] = frozenset()
    boots: Mapping[str, BootRecord] = field(default_factory=dict)  # the newest per node
    queue: QueueDepth | None = None
    poison: QueueDepth | None = None
    poisoned_at: Sequence[float] = ()  # when the peeked poison messages were poisoned
    api_queue: QueueDepth | None = None
    evictions: Sequence[EvictionRecord] = ()  # at least the window's
    routing: RoutingRecord | None = None
    last_decision: AuditRecord | None = None
    unavailable: Mapping[str, str] = field(default_factory=dict)  # source -> why it could not be read


@dataclass(frozen=True)
class NodeStatus:
    node: str
    power: str  # the slot's power state; "unknown" (slots not observed), "no-slot" (an API worker, say)
    size: str
    address: str | None
    agent_state: str | None  # None: no heartbeat yet
    heartbeat_age_seconds: float | None
    in_flight: tuple[str, ...]
    lease_expires_in_seconds: float | None  # the first held lease; None when none is held or unknown
    version: str | None
    engine: str | None
    model: str | None
    processed: int
    cache_hits: int
    failures: int
    drain_requested: bool
    stale: bool  # its heartbeat is older than the threshold (whatever its state)
    stuck: bool  # stale while holding leases: its segments wait for the leases to run out


@dataclass(frozen=True)
class QueueStatus:
    name: str
    total: int | None
    visible: int | None
    leased: int | None
    poisoned: int | None
    oldest_age_seconds: float | None  # the oldest waiting message; None: none waiting, or unknown
    oldest_known: bool  # False: the backend cannot say (or the queue was not read)


@dataclass(frozen=True)
class ApiStatus:
    routing: str | None  # self-host | split | api; None before the controller's first decision
    routing_at: float | None
    workers: int | None  # as the controller's last decision saw them; None: no API path, or no decision
    workers_at: float | None
    queue: QueueStatus | None


@dataclass(frozen=True)
class Problem:
    """One thing on-call should look at; every field but the first three is machine-readable detail."""

    kind: str  # stale-heartbeat | stuck-lease | node-failed | poison-growing | poison-nonempty | unavailable
    severity: str  # critical | warning
    message: str
    node: str | None = None
    queue: str | None = None
    source: str | None = None
    age_seconds: float | None = None
    stale_after_seconds: float | None = None
    in_flight: int | None = None
    lease_expires_in_seconds: float | None = None
    poisoned: int | None = None
    previous_poisoned: int | None = None
    last_poisoned_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class FleetStatus:
    at: float
    stale_after_seconds: float
    nodes: tuple[NodeStatus, ...]
    queue: QueueStatus
    api: ApiStatus
    evictions_24h: tuple[EvictionRecord, ...]
    problems: tuple[Problem, ...]
    unavailable: Mapping[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "stale_after_seconds": self.stale_after_seconds,
                "nodes": [asdict(n) | {"in_flight": list(n.in_flight)} for n in self.nodes],
                "queue": asdict(self.queue), "api": asdict(self.api),
                "evictions_24h": {"count": len(self.evictions_24h), "by_node": self.evictions_by_node(),
                                  "records": [asdict(e) for e in self.evictions_24h]},
                "problems": [p.as_dict() for p in self.problems], "unavailable": dict(self.unavailable)}

    def evictions_by_node(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.evictions_24h:
            counts[record.node] = counts.get(record.node, 0) + 1
        return dict(sorted(counts.items()))


def queue_status(name: str, depth: QueueDepth | None, poison: QueueDepth | None, now: float) -> QueueStatus:
    if depth is None:
        return QueueStatus(name, None, None, None, None if poison is None else poison.total, None, False)
    waiting = depth.visible
    oldest = None if depth.oldest_enqueued_at is None else round(max(0.0, now - depth.oldest_enqueued_at), 1)
    known = waiting == 0 or oldest is not None  # nothing waiting has no age; anything else needs one
    return QueueStatus(name, depth.total, waiting, depth.leased, None if poison is None else poison.total,
                       oldest, known)


def _node(name: str, slot: SlotView | None, slots_seen: bool, beat: Heartbeat | None, boot: BootRecord | None,
          drain: bool, now: float, stale_after: float) -> NodeStatus:
    power = slot.power if slot is not None else ("no-slot" if slots_seen else "unknown")
    age = None if beat is None else round(now - beat.updated_at, 1)
    stale = beat is not None and now - beat.updated_at > stale_after
    expires = None if beat is None or beat.lease_expires_at <= now else round(beat.lease_expires_at - now, 1)
    return NodeStatus(
        node=name, power=power, size=slot.size if slot is not None else "",
        address=(slot.address or None) if slot is not None else None,
        agent_state=None if beat is None else agent_state(beat, now, stale_after), heartbeat_age_seconds=age,
        in_flight=tuple(beat.in_flight) if beat else (), lease_expires_in_seconds=expires,
        version=beat.version if beat else None, engine=(boot.engine or None) if boot else None,
        model=(boot.model or None) if boot else None, processed=beat.processed if beat else 0,
        cache_hits=beat.cache_hits if beat else 0, failures=beat.failures if beat else 0, drain_requested=drain,
        stale=stale, stuck=beat is not None and stale and holds_leases(beat, now))


def _slot(node: NodeStatus) -> str:
    return {"no-slot": "no slot", "unknown": "slot not observed"}.get(node.power, f"slot {node.power}")


def _node_problems(node: NodeStatus, stale_after: float) -> list[Problem]:
    found = []
    if node.stuck:
        wait = (f"its leases run out in {node.lease_expires_in_seconds:.0f} s"
                if node.lease_expires_in_seconds is not None else "when its leases run out is unknown")
        found.append(Problem("stuck-lease", CRITICAL,
                             f"{node.node}: silent for {node.heartbeat_age_seconds:.0f} s holding "
                             f"{len(node.in_flight)} segment(s); {wait}", node=node.node,
                             age_seconds=node.heartbeat_age_seconds, stale_after_seconds=stale_after,
                             in_flight=len(node.in_flight), lease_expires_in_seconds=node.lease_expires_in_seconds))
    if node.agent_state == "silent" and node.power not in OFF_POWER:
        found.append(Problem("stale-heartbeat", CRITICAL,
                             f"{node.node}: no heartbeat for {node.heartbeat_age_seconds:.0f} s (stale after "
                             f"{stale_after:.0f} s; {_slot(node)})", node=node.node,
                             age_seconds=node.heartbeat_age_seconds, stale_after_seconds=stale_after))
    if node.agent_state == "failed":
        found.append(Problem("node-failed", WARNING, f"{node.node}: the agent stopped on an error ({_slot(node)})",
                             node=node.node, age_seconds=node.heartbeat_age_seconds))
    return found


def _poison_problem(queue: QueueStatus, poisoned_at: Sequence[float], now: float,
                    previous: FleetStatus | None) -> Problem | None:
    count = queue.poisoned
    if not count:
        return None
    before = previous.queue.poisoned if previous is not None else None
    last = max(poisoned_at, default=None)
    recent = last is not None and now - last <= RECENT_POISON_SECONDS
    rose = before is not None and count > before
    if rose or recent:
        since = f"{before} → {count} since the last look" if rose else f"the last one {now - (last or now):.0f} s ago"
        return Problem("poison-growing", CRITICAL, f"poison queue {queue.name}-poison is growing ({since}); "
                       "`spotkit queue poisoned` says why", queue=queue.name, poisoned=count,
                       previous_poisoned=before, last_poisoned_at=last)
    return Problem("poison-nonempty", WARNING, f"poison queue {queue.name}-poison holds {count} message(s); "
                   "`spotkit queue poisoned` says why", queue=queue.name, poisoned=count, last_poisoned_at=last)


def assemble(seen: Observations, stale_after: float, previous: FleetStatus | None = None) -> FleetStatus:
    """The status at ``seen.at``; *previous* (the last frame of a watch) tells a growing poison queue."""
    now = seen.at
    beats = {beat.node: beat for beat in seen.heartbeats}
    slots = {slot.name: slot for slot in seen.slots or ()}
    names = list(slots) + sorted(set(beats) - set(slots))
    nodes = tuple(_node(name, slots.get(name), seen.slots is not None, beats.get(name), seen.boots.get(name),
                        name in seen.drain_requested, now, stale_after) for name in names)
    queue = queue_status(seen.queue_name, seen.queue, seen.poison, now)
    decision = seen.last_decision
    workers = decision.observed.get("api_workers") if decision is not None else None
    api = ApiStatus(seen.routing.routing if seen.routing else None, seen.routing.at if seen.routing else None,
                    workers if isinstance(workers, int) else None, decision.at if decision is not None else None,
                    None if seen.api_queue is None else queue_status(f"{seen.queue_name}-api", seen.api_queue,
                                                                     None, now))
    problems = [p for node in nodes for p in _node_problems(node, stale_after)]
    poison = _poison_problem(queue, seen.poisoned_at, now, previous)
    if poison is not None:
        problems.append(poison)
    problems += [Problem("unavailable", WARNING, f"{source}: not observed ({why})", source=source)
                 for source, why in sorted(seen.unavailable.items())]
    problems.sort(key=lambda p: p.severity != CRITICAL)  # stable: critical first, then in the order found
    evictions = tuple(sorted((e for e in seen.evictions if e.seen_at >= now - EVICTION_WINDOW_SECONDS),
                             key=lambda e: e.seen_at))
    return FleetStatus(now, stale_after, nodes, queue, api, evictions, tuple(problems), dict(seen.unavailable))
