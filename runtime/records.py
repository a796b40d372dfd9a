"""The store's layout and the records kept in it: every key prefix spelled once, one typed record per kind.

Writers and readers on every side (agents, watcher, submit, on-call, controller, reports) import the
key functions and record types from here, so a key or a field cannot drift between the one who writes
it and the one who reads it. Every record carries ``v``, its schema version: a reader refuses a record
from a newer spotkit with a clear error rather than misreading it, and reads one without ``v`` (written
before records were versioned) as version 1. ``LAYOUT`` is the table that docs/runtime.md shows; a test
holds the two together.
"""

from __future__ import annotations

import json
import logging
import types
import typing
from collections.abc import Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from runtime.errors import NotFound, SpotkitError
from runtime.store.base import ObjectStore

log = logging.getLogger("spotkit.records")

# -- key prefixes: the only place they are spelled ------------------------------------------------
JOBS = "jobs/"
SEGMENTS = "segments/"
RESULTS = "results/"
TRANSCRIPTS = "results/transcribe/"
TRANSLATIONS = "results/translate/"
POISONED = "poisoned/"
QUEUED = "queued/"
BACKLOG = "backlog/"
USAGE = "usage/"
HEARTBEATS = "heartbeats/"
EVICTIONS = "evictions/"
BOOTS = "boots/"
DRAIN_REQUESTS = "drain-requests/"
DRAINED_FOR = "drained-events/"
AUDIT = "audit/controller/"
CONTROL = "control/"
MODELS = "models/"

# (key pattern, written by, how): the store-layout table of docs/runtime.md.
LAYOUT: tuple[tuple[str, str, str], ...] = (
    (f"{JOBS}<job>.json", "submit", "write-if-absent"),
    (f"{SEGMENTS}<segment>.flac", "submit", "write-if-absent"),
    (f"{TRANSCRIPTS}<segment>.json", "agent", "write-if-absent: the first writer wins, later ones reuse it"),
    (f"{TRANSLATIONS}<hash>.json", "agent", "keyed by (transcript, model, language, prompt version)"),
    (f"{POISONED}<segment>.json, …/<segment>-translate-<lang>.json", "agent",
     "why a segment (or its translation) was poisoned (`PoisonRecord`, for `status`)"),
    (f"{QUEUED}<segment>.json", "submit", "the segment is in the queue for that job (`QueuedRecord`): "
     "a resubmit does not enqueue it twice"),
    (f"{BACKLOG}<ms>-<job>.json", "submit", "what one submission queued, by when and how urgently (`BacklogRecord`): "
     "the controller plans against it; deleted by the controller once done"),
    (f"{HEARTBEATS}<node>.json", "agent", "overwritten every `heartbeat_seconds` (`Heartbeat`)"),
    (f"{USAGE}day=YYYY-MM-DD/node=NAME/<ms>-<rand>.jsonl", "agent",
     "append-only, one new object per flush (`UsageRecord` lines)"),
    (f"{BOOTS}day=YYYY-MM-DD/<node>-<ms>.json", "agent", "when the engine became ready (`BootRecord`)"),
    (f"{EVICTIONS}day=YYYY-MM-DD/<node>-<event>.json", "watcher",
     "one per drain: eviction, SIGTERM, operator (`EvictionRecord`)"),
    (f"{DRAIN_REQUESTS}<node>.json", "`spotkit node drain`", "deleted by `undrain` (`DrainRequest`)"),
    (f"{DRAINED_FOR}<event>/<vm>.json", "watcher", "this VM drained for an event naming several "
     "(`DrainedMarker`): the last to drain acknowledges"),
    (f"{AUDIT}day=YYYY-MM-DD/<ms>-<rand>.json", "controller", "every scaling decision (`AuditRecord`)"),
    (f"{CONTROL}routing.json", "controller", "the current routing (`RoutingRecord`)"),
    (f"{CONTROL}budget-alerts/YYYY-MM-<level>.json", "controller",
     "write-if-absent: the month's API spend crossed 80 % / 100 % of its cap, alerted once (`BudgetAlert`)"),
    (f"{MODELS}<model>/manifest.json, …/files/<file>", "`spotkit models publish`",
     "the model mirror, manifest written last"),
)


def day_of(ts: float) -> str:
    """The UTC day partition of a timestamp."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def job_key(job: str) -> str:
    return f"{JOBS}{job}.json"


def audio_key(segment: str) -> str:
    return f"{SEGMENTS}{segment}.flac"


def result_key(task: str, segment: str) -> str:
    return f"{RESULTS}{task}/{segment}.json"


def translation_result_key(key: str) -> str:
    return f"{TRANSLATIONS}{key}.json"


def poison_key(segment: str, task: str = "transcribe", language: str = "") -> str:
    """Why a segment's transcription (or its translation into *language*) was poisoned."""
    return f"{POISONED}{segment}.json" if task == "transcribe" else f"{POISONED}{segment}-{task}-{language}.json"


def queued_key(segment: str) -> str:
    return f"{QUEUED}{segment}.json"


def heartbeat_key(node: str) -> str:
    return f"{HEARTBEATS}{node}.json"


def usage_prefix(day: str | None = None) -> str:
    return f"{USAGE}day={day}/" if day else USAGE


def usage_key(day: str, node: str, stamp_ms: int, suffix: str) -> str:
    return f"{usage_prefix(day)}node={node}/{stamp_ms:015d}-{suffix}.jsonl"


def boot_key(day: str, node: str, stamp_ms: int) -> str:
    return f"{BOOTS}day={day}/{node}-{stamp_ms}.json"


def evictions_prefix(day: str | None = None) -> str:
    return f"{EVICTIONS}day={day}/" if day else EVICTIONS


def drain_request_key(node: str) -> str:
    return f"{DRAIN_REQUESTS}{node}.json"


def drained_marker_key(event_id: str, vm: str) -> str:
    return f"{DRAINED_FOR}{event_id}/{vm}.json"


def audit_prefix(day: str | None = None) -> str:
    return f"{AUDIT}day={day}/" if day else AUDIT


def audit_key(day: str, stamp_ms: int, suffix: str) -> str:
    return f"{audit_prefix(day)}{stamp_ms:015d}-{suffix}.json"


ROUTING_KEY = f"{CONTROL}routing.json"


def budget_alert_key(month: str, level: str) -> str:
    """One marker per month and level: written if absent, so the alert fires once."""
    return f"{CONTROL}budget-alerts/{month}-{level}.json"


def model_prefix(folder: str) -> str:
    """The mirror of one model (*folder* is `runtime.models.folder_name` of it)."""
    return f"{MODELS}{folder}/"


def model_manifest_key(folder: str) -> str:
    return f"{model_prefix(folder)}manifest.json"


def model_file_key(folder: str, name: str) -> str:
    return f"{model_prefix(folder)}files/{name}"


# -- records ----------------------------------------------------------------------------------------
class BadRecord(SpotkitError):
    """A record in the store cannot be read: not JSON, a field missing or of the wrong type, or newer."""


@dataclass(frozen=True)
class Heartbeat:
    """A node's state as on-call sees it, overwritten every few seconds."""

    node: str
    state: str  # starting | idle | working | holding | draining | drained | stopped | failed
    version: str
    updated_at: float
    in_flight: list[str] = field(default_factory=list)
    processed: int = 0
    cache_hits: int = 0
    failures: int = 0
    lease_expires_at: float = 0.0  # when the first held lease runs out if the node stops renewing it
    v: int = 1

    def is_fresh(self, now: float, max_age: float) -> bool:
        return self.state not in ("stopped", "failed") and now - self.updated_at <= max_age


OUTCOMES = ("done", "cache-hit", "requeued", "failed")


@dataclass(frozen=True)
class UsageRecord:
    """What a node did with one segment: the input of the cost policies and the monthly report."""

    node: str
    job: str
    segment: str
    task: str
    audio_seconds: float
    tokens_in: int
    tokens_out: int
    engine: str
    model: str
    started_at: float
    ended_at: float
    outcome: str  # one of OUTCOMES
    error: str = ""
    gpu_seconds: float = 0.0  # engine time spent on this segment (its share of the batch)
    path: str = "fleet"  # fleet (a node's engine) | api (a metered API, billed per unit)
    v: int = 1


@dataclass(frozen=True)
class EvictionRecord:
    """One drain: what the event was, how much notice it gave, what the node finished and handed back."""

    node: str
    event_id: str
    event_type: str
    origin: str  # imds | signal | drain-request
    seen_at: float
    not_before: float | None
    notice_seconds: float  # NotBefore − first seen (0 when it came Started)
    drain_started_at: float
    drained_at: float = 0.0
    drain_seconds: float = 0.0  # first seen → drained
    finished: int = 0  # segments completed after the event was seen
    requeued: int = 0
    wasted_gpu_seconds: float = 0.0
    will_acknowledge: bool = False  # written before the approval, which may end the VM at once
    acknowledged_at: float | None = None  # best effort: the VM may be gone before this is stored
    ack_error: str = ""
    v: int = 1

    def key(self) -> str:
        return f"{evictions_prefix(day_of(self.seen_at))}{self.node}-{self.event_id}.json"


@dataclass(frozen=True)
class DrainRequest:
    """An operator's request that a node drain (``spotkit node drain``)."""

    id: str
    requested_at: float
    deadline_seconds: float = 0.0
    reason: str = "operator drain"
    v: int = 1


@dataclass(frozen=True)
class DrainedMarker:
    """*vm* has drained for *event_id*; an event naming several VMs is acknowledged once all have."""

    event_id: str
    vm: str
    node: str
    at: float
    v: int = 1


@dataclass(frozen=True)
class BootRecord:
    """When a node's engine became ready, and how long after the OS booted: the policies' boot time."""

    node: str
    ready_at: float
    model_load_seconds: float
    os_uptime_seconds: float  # -1 when unknown
    cache_dir_had_results: bool  # a warm persistent disk
    engine: str
    version: str
    v: int = 1


@dataclass(frozen=True)
class PoisonRecord:
    """Why a segment was poisoned, for ``spotkit status``."""

    segment: str
    job: str
    reason: str
    at: float
    node: str
    v: int = 1


@dataclass(frozen=True)
class QueuedRecord:
    """A segment's transcription was enqueued for *job* at *at* (so a resubmit does not enqueue it again)."""

    job: str
    segment: str
    at: float
    v: int = 1


@dataclass(frozen=True)
class AuditRecord:
    """One controller decision: what it saw, what it wanted, why, and what it did."""

    at: float
    observed: dict[str, Any]
    desired: int
    routing: str  # self-host | split | api
    reason: str
    actions: list[dict[str, Any]] = field(default_factory=list)
    # Each input with its source (measured / price-book / flag / prior) and the break-even it implies.
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    break_even: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)  # the month's API spend against its cap
    v: int = 1


@dataclass(frozen=True)
class BacklogRecord:
    """One submission's queued work and its deadline: what the controller plans against."""

    job: str
    submitted_at: float
    deadline_at: float
    priority: str  # high | normal | low
    segments: int  # messages this submission enqueued
    audio_seconds: float  # their speech
    v: int = 1


def backlog_key(job: str, stamp_ms: int) -> str:
    return f"{BACKLOG}{stamp_ms:015d}-{job}.json"


@dataclass(frozen=True)
class BudgetAlert:
    """The month's metered spend crossed a level of its cap (``80%``, ``100%``)."""

    month: str
    level: str
    spent_usd: float
    cap_usd: float
    at: float
    v: int = 1


@dataclass(frozen=True)
class RoutingRecord:
    """Where work goes now, as the controller last decided."""

    routing: str
    at: float
    v: int = 1


R = TypeVar("R")


def dump(record: Any) -> bytes:
    """One record as JSON bytes (sorted keys, so the same record gives the same bytes)."""
    return json.dumps(asdict(record), sort_keys=True).encode()


def load(kind: type[R], data: bytes | str | dict[str, Any], where: str = "") -> R:
    """Parse one record of *kind*; `BadRecord` names *where* it came from and what is wrong."""
    label = f"{kind.__name__}{' at ' + where if where else ''}"
    try:
        raw = json.loads(data) if isinstance(data, (bytes, str)) else data
    except ValueError as err:  # UnicodeDecodeError included
        raise BadRecord(f"{label} is not JSON ({err})") from None
    if not isinstance(raw, dict):
        raise BadRecord(f"{label} is not a JSON object")
    version = raw.get("v", 1)
    known = _field_default(kind, "v")
    if not isinstance(version, int) or version > known:
        raise BadRecord(f"{label} has version {version!r}, this spotkit reads up to {known}; upgrade spotkit")
    hints = typing.get_type_hints(kind)
    values: dict[str, Any] = {}
    for f in fields(kind):  # type: ignore[arg-type]
        if f.name not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                raise BadRecord(f"{label} lacks the field {f.name!r}")
            continue
        values[f.name] = _checked(raw[f.name], hints[f.name], f"{label}: field {f.name!r}")
    return kind(**values)


def _field_default(kind: type, name: str) -> int:
    return int(next(f.default for f in fields(kind) if f.name == name))  # type: ignore[arg-type]


def _checked(value: Any, hint: Any, label: str) -> Any:
    """The value if it has the declared type (an int where a float is declared becomes a float)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        base = typing.get_origin(option) or option
        if option is type(None) and value is None:
            return None
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base in (str, bool, list, dict) and isinstance(value, base):
            return value
    raise BadRecord(f"{label} is {value!r}, expected {hint}")


def load_lines(kind: type[R], data: bytes, where: str = "") -> list[R]:
    """A JSON-lines object (usage): one record per non-empty line."""
    try:
        text = data.decode()
    except UnicodeDecodeError as err:
        raise BadRecord(f"{kind.__name__} lines at {where} are not UTF-8 ({err})") from None
    return [load(kind, line, f"{where} line {n}") for n, line in enumerate(text.splitlines(), 1) if line.strip()]


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


def read_usage(store: ObjectStore, day: str | None = None) -> list[UsageRecord]:
    """All usage records (or one UTC day's), oldest object first."""
    return list(read_all(store, UsageRecord, usage_prefix(day), lines=True))


def read_evictions(store: ObjectStore, day: str | None = None) -> list[EvictionRecord]:
    return sorted(read_all(store, EvictionRecord, evictions_prefix(day)), key=lambda r: r.seen_at)


def read_boots(store: ObjectStore) -> list[BootRecord]:
    return list(read_all(store, BootRecord, BOOTS))


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


def layout_table() -> str:
    """`LAYOUT` as the Markdown table of docs/runtime.md (``python -m runtime.records`` prints it)."""
    rows = "\n".join(f"| `{key}` | {who} | {how} |" for key, who, how in LAYOUT)
    return f"| key | written by | how |\n| --- | --- | --- |\n{rows}"


if __name__ == "__main__":
    print(layout_table())
