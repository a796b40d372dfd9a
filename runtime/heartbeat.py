"""Per-node heartbeats in the store: what on-call and ``spotkit status`` see of a live fleet."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from runtime.errors import StoreError
from runtime.store.base import ObjectStore


@dataclass(frozen=True)
class Heartbeat:
    node: str
    state: str
    version: str
    updated_at: float
    in_flight: list[str] = field(default_factory=list)
    processed: int = 0
    cache_hits: int = 0
    failures: int = 0

    def is_fresh(self, now: float, max_age: float) -> bool:
        return self.state not in ("stopped", "failed") and now - self.updated_at <= max_age


def heartbeat_key(node: str) -> str:
    return f"heartbeats/{node}.json"


def write_heartbeat(store: ObjectStore, beat: Heartbeat) -> None:
    store.put(heartbeat_key(beat.node), json.dumps(asdict(beat), sort_keys=True).encode())


def read_heartbeats(store: ObjectStore) -> list[Heartbeat]:
    beats = []
    for key in store.list("heartbeats/"):
        try:
            beats.append(Heartbeat(**json.loads(store.get(key))))
        except (ValueError, TypeError, StoreError):
            continue  # a node mid-write or a foreign object: not a reason to fail status
    return beats
