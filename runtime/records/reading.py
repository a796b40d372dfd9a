"""Reading records back from the store: every readable one, the unreadable ones logged and skipped."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from runtime.errors import NotFound
from runtime.records.codec import BadRecord, R, load, load_lines
from runtime.records.keys import (
    BACKLOG,
    BOOTS,
    HEARTBEATS,
    HOST_KEYS,
    ROUTING_KEY,
    audit_prefix,
    boot_key_parts,
    day_of,
    evictions_prefix,
    power_prefix,
)
from runtime.records.kinds import (
    AuditRecord,
    BacklogRecord,
    BootRecord,
    EvictionRecord,
    Heartbeat,
    NodeHostKeys,
    PowerEvent,
    RoutingRecord,
)
from runtime.store.base import ObjectStore

log = logging.getLogger("spotkit.records")


def read_all(store: ObjectStore, kind: type[R], prefix: str, lines: bool = False) -> Iterator[R]:
    """Every readable record under *prefix* (JSON lines if *lines*), oldest key first; an unreadable
    object is logged and skipped, so one corrupt object never hides the rest of the fleet from on-call."""
    for key in store.list(prefix):
        try:
            data = store.get(key)
            yield from (load_lines(kind, data, key) if lines else [load(kind, data, key)])
        except BadRecord as err:
            log.warning("event=record-skipped key=%s error=%r", key, str(err))


def read_heartbeats(store: ObjectStore) -> list[Heartbeat]:
    return list(read_all(store, Heartbeat, HEARTBEATS))


def read_host_keys(store: ObjectStore) -> dict[str, NodeHostKeys]:
    """Every node's published host keys, by node name."""
    return {record.node: record for record in read_all(store, NodeHostKeys, HOST_KEYS)}


def read_evictions(store: ObjectStore, day: str | None = None) -> list[EvictionRecord]:
    return sorted(read_all(store, EvictionRecord, evictions_prefix(day)), key=lambda r: r.seen_at)


def read_boots(store: ObjectStore) -> list[BootRecord]:
    return list(read_all(store, BootRecord, BOOTS))


def read_latest_boots(store: ObjectStore) -> dict[str, BootRecord]:
    """Each node's newest boot record: only the keys are listed, one record per node is read (an
    unreadable newest one leaves that node out rather than showing an older start as its current one)."""
    newest: dict[str, tuple[int, str]] = {}
    for key in store.list(BOOTS):
        parts = boot_key_parts(key)
        if parts is not None and parts[1] >= newest.get(parts[0], (-1, ""))[0]:
            newest[parts[0]] = (parts[1], key)
    found: dict[str, BootRecord] = {}
    for node, (_, key) in sorted(newest.items()):
        try:
            found[node] = load(BootRecord, store.get(key), key)
        except (BadRecord, NotFound) as err:
            log.warning("event=record-skipped key=%s error=%r", key, str(err))
    return found


def read_routing(store: ObjectStore) -> RoutingRecord | None:
    """The controller's current routing; None until it has decided once (or when unreadable)."""
    try:
        return load(RoutingRecord, store.get(ROUTING_KEY), ROUTING_KEY)
    except NotFound:
        return None
    except BadRecord as err:
        log.warning("event=record-skipped key=%s error=%r", ROUTING_KEY, str(err))
        return None


def read_latest_audit(store: ObjectStore, days: list[str]) -> AuditRecord | None:
    """The controller's newest decision in *days* (UTC, newest first), reading one record: audit keys
    sort by time, so only the listing of a day is walked, not every decision in it."""
    for day in days:
        for key in sorted(store.list(audit_prefix(day)), reverse=True):
            try:
                return load(AuditRecord, store.get(key), key)
            except (BadRecord, NotFound) as err:
                log.warning("event=record-skipped key=%s error=%r", key, str(err))
    return None


def read_backlog(store: ObjectStore, known: dict[str, BacklogRecord] | None = None) -> dict[str, BacklogRecord]:
    """Every submission's backlog record by key (keys sort by submission time). A record never changes
    once written, so those in *known* are not read again; unreadable or vanished ones are skipped."""
    known = known or {}
    found: dict[str, BacklogRecord] = {}
    for key in store.list(BACKLOG):
        if key in known:
            found[key] = known[key]
            continue
        try:
            found[key] = load(BacklogRecord, store.get(key), key)
        except (BadRecord, NotFound) as err:
            log.warning("event=record-skipped key=%s error=%r", key, str(err))
    return found


def read_audit(store: ObjectStore, day: str | None = None) -> list[AuditRecord]:
    return list(read_all(store, AuditRecord, audit_prefix(day)))


def read_power(store: ObjectStore, day: str | None = None) -> list[PowerEvent]:
    """Power events (all, or one UTC day's), in time order (`policies.power` orders ties)."""
    return sorted(read_all(store, PowerEvent, power_prefix(day)), key=lambda e: e.at)


def read_power_span(store: ObjectStore, start: float, end: float) -> list[PowerEvent]:
    """The power events that say how slots stood in [start, end): its days' partitions and the day
    before (each day opens with every slot's state, so that day gives the state at *start*)."""
    first = int(start // 86400) - 1
    days = [day_of(d * 86400.0) for d in range(first, int(end // 86400) + 1)]
    return sorted((e for day in days for e in read_all(store, PowerEvent, power_prefix(day))), key=lambda e: e.at)
