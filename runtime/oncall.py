"""What on-call needs from the store: the fleet's heartbeats, its evictions, and drain requests."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from runtime.errors import SpotkitError
from runtime.eviction.sources import drain_request_key
from runtime.heartbeat import read_heartbeats
from runtime.store.base import ObjectStore


def list_nodes(store: ObjectStore, now: float | None = None,
               stale_after: float = 30.0) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    rows = []
    for beat in read_heartbeats(store):
        age = now - beat.updated_at
        state = beat.state if beat.state in ("stopped", "failed") or age <= stale_after else "silent"
        rows.append({"node": beat.node, "state": state, "seconds_since_heartbeat": round(age, 1),
                     "in_flight": len(beat.in_flight), "processed": beat.processed,
                     "cache_hits": beat.cache_hits, "failures": beat.failures, "version": beat.version,
                     "drain_requested": store.exists(drain_request_key(beat.node))})
    return sorted(rows, key=lambda r: str(r["node"]))


def list_evictions(store: ObjectStore, day: str | None = None) -> list[dict[str, Any]]:
    prefix = f"evictions/day={day}/" if day else "evictions/"
    records = [json.loads(store.get(key)) for key in store.list(prefix)]
    return sorted(records, key=lambda r: float(r["seen_at"]))


def request_drain(store: ObjectStore, node: str, deadline_seconds: float, reason: str,
                  now: float | None = None) -> str:
    """Ask NODE to drain (it sees the request within its poll interval, 5 s by default)."""
    if deadline_seconds < 0:
        raise SpotkitError("--deadline must be 0 or more seconds")
    request_id = f"drain-{uuid.uuid4().hex[:12]}"
    store.put(drain_request_key(node), json.dumps({
        "id": request_id, "requested_at": time.time() if now is None else now,
        "deadline_seconds": deadline_seconds, "reason": reason}).encode())
    return request_id


def cancel_drain(store: ObjectStore, node: str) -> bool:
    existed = store.exists(drain_request_key(node))
    store.delete(drain_request_key(node))
    return existed
