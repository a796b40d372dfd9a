"""What on-call needs from the store and the queue: the fleet's heartbeats, its evictions, drain
requests, and everything `spotkit fleet status` shows (`observe_fleet`: the reading, at the edge;
`runtime.fleet_status`: the pure assembly)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from runtime.errors import SpotkitError
from runtime.fleet_status import EVICTION_WINDOW_SECONDS, Observations, SlotView, agent_state
from runtime.queue.base import WorkQueue
from runtime.queue.replay import list_poisoned
from runtime.records import (
    DrainRequest,
    Heartbeat,
    day_of,
    drain_request_key,
    dump,
    read_evictions,
    read_heartbeats,
    read_latest_audit,
    read_latest_boots,
    read_routing,
)
from runtime.store.base import ObjectStore

T = TypeVar("T")


def list_nodes(store: ObjectStore, now: float | None = None,
               stale_after: float = 30.0) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    rows = []
    for beat in read_heartbeats(store):
        age = now - beat.updated_at
        state = agent_state(beat, now, stale_after)
        rows.append({"node": beat.node, "state": state, "seconds_since_heartbeat": round(age, 1),
                     "in_flight": len(beat.in_flight), "processed": beat.processed,
                     "cache_hits": beat.cache_hits, "failures": beat.failures, "version": beat.version,
                     "drain_requested": store.exists(drain_request_key(beat.node))})
    return sorted(rows, key=lambda r: str(r["node"]))


def list_evictions(store: ObjectStore, day: str | None = None) -> list[dict[str, Any]]:
    return [asdict(record) for record in read_evictions(store, day)]


def request_drain(store: ObjectStore, node: str, deadline_seconds: float, reason: str,
                  now: float | None = None, force: bool = False) -> str:
    """Ask NODE to drain (it sees the request within its poll interval, 5 s by default). A name no node
    has ever sent a heartbeat under is refused (a typo would otherwise drain nothing, silently)."""
    if deadline_seconds < 0:
        raise SpotkitError("--deadline must be 0 or more seconds")
    known = sorted(beat.node for beat in read_heartbeats(store))
    if node not in known and not force:
        raise SpotkitError(f"no node {node!r} has sent a heartbeat; known nodes: {', '.join(known) or 'none'} "
                           "(--force asks anyway, for a node still booting)")
    request = DrainRequest(f"drain-{uuid.uuid4().hex[:12]}", time.time() if now is None else now,
                           deadline_seconds, reason)
    store.put(drain_request_key(node), dump(request))
    return request.id


def cancel_drain(store: ObjectStore, node: str) -> bool:
    existed = store.exists(drain_request_key(node))
    store.delete(drain_request_key(node))
    return existed


def observe_fleet(store: ObjectStore, queue: WorkQueue, slots: Callable[[], Sequence[SlotView]],
                  api_queue: WorkQueue | None = None, clock: Callable[[], float] = time.time) -> Observations:
    """Read what `runtime.fleet_status.assemble` needs. Each source is read on its own: one that fails
    (no local fleet, the queue unreachable, a refused credential) is named in ``unavailable`` with its
    one-line reason and the rest is still shown — on-call needs the partial view most when things break."""
    unavailable: dict[str, str] = {}

    def read(source: str, fn: Callable[[], T], default: T) -> T:
        try:
            return fn()
        except SpotkitError as err:
            unavailable[source] = str(err)
            return default

    now = clock()
    beats: list[Heartbeat] = read("heartbeats", lambda: read_heartbeats(store), [])
    days = [day_of(now), day_of(now - EVICTION_WINDOW_SECONDS)]
    poison = queue.poison_queue()
    return Observations(
        at=now, queue_name=queue.name,
        slots=read("slots", lambda: list(slots()), None),
        heartbeats=beats,
        drain_requested=read("drain-requests", lambda: frozenset(
            b.node for b in beats if store.exists(drain_request_key(b.node))), frozenset()),
        boots=read("boots", lambda: read_latest_boots(store), {}),
        queue=read("queue", queue.depth, None),
        poison=read("poison-queue", poison.depth, None),
        poisoned_at=read("poison-queue", lambda: [p.record.poisoned_at for p in list_poisoned(queue) if p.record], []),
        api_queue=None if api_queue is None else read("api-queue", api_queue.depth, None),
        evictions=read("evictions", lambda: [e for day in dict.fromkeys(days) for e in read_evictions(store, day)], []),
        routing=read("routing", lambda: read_routing(store), None),
        last_decision=read("controller-audit", lambda: read_latest_audit(store, list(dict.fromkeys(days))), None),
        unavailable=unavailable)
