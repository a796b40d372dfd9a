"""What on-call needs from the store: the fleet's heartbeats, its evictions, and drain requests."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from typing import Any

from runtime.errors import SpotkitError
from runtime.records import DrainRequest, Heartbeat, drain_request_key, dump, read_evictions, read_heartbeats
from runtime.store.base import ObjectStore

# A node that drained or stopped is expected to fall silent (deallocated, shut down): say what it was.
QUIET_STATES = ("drained", "stopped", "failed")


def heartbeat_max_age(heartbeat_seconds: float) -> float:
    """How old a heartbeat may get before its node counts as gone: three missed beats, never under
    30 s (a slow store write or a loaded node must not make a live node look dead). One threshold for
    `status`, `node list` and `queue leases|release`, so they never disagree about a node."""
    return max(30.0, 3 * heartbeat_seconds)


def shown_state(beat: Heartbeat, now: float, stale_after: float) -> str:
    """The state on-call sees: the node's own, or ``silent`` once its heartbeat is older than
    *stale_after* — unless its last word was that it drained or stopped."""
    return beat.state if beat.state in QUIET_STATES or now - beat.updated_at <= stale_after else "silent"


def list_nodes(store: ObjectStore, now: float | None = None,
               stale_after: float = 30.0) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    rows = []
    for beat in read_heartbeats(store):
        age = now - beat.updated_at
        state = shown_state(beat, now, stale_after)
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
