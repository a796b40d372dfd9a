"""One typed record per kind kept in the store: the definition that writer and reader share.

Every record carries ``v``, its schema version (see `runtime.records.codec` for how it is read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.records.keys import day_of, evictions_prefix


@dataclass(frozen=True)
class HeldLease:
    """One message a node holds, as its heartbeat publishes it: Azure queues show only visible messages
    and change one only with its current pop receipt, so this is how on-call sees and hands back a dead
    node's work (`spotkit queue leases|release`). Part of `Heartbeat`; no version of its own."""

    message_id: str
    pop_receipt: str  # the current one: it changes on every renewal
    expires_at: float  # when the lease runs out unless renewed (the node's clock)
    segment: str = ""  # "" until the message is parsed (or when it is not a work item)
    job: str = ""


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
    # Every held message with its current pop receipt (at most batch_size, ≤ 32: about 250 bytes each).
    # Empty in heartbeats of agents from before leases were published.
    leases: list[HeldLease] = field(default_factory=list)
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
class UsageTotal:
    """The sums of one day's usage records that share a job, task, engine, model, path and outcome:
    what the report and the API budget need, at a size that grows with jobs, not with segments or nodes
    (a job's segments are spread over the whole fleet). Part of `UsageRollup`; no version of its own."""

    day: str
    job: str
    task: str
    engine: str
    model: str
    path: str
    outcome: str
    records: int
    audio_seconds: float
    tokens_in: int
    tokens_out: int
    gpu_seconds: float


@dataclass(frozen=True)
class RollupCoverage:
    """Which of a node's raw usage a rollup sums: its compacted object, holding every flush up to the
    stem ``through`` (usage keys sort by flush time). Part of `UsageRollup`."""

    node: str
    through: str
    records: int


@dataclass(frozen=True)
class JobMedia:
    """A job's media and speech seconds, from its complete manifest: what the segmenter left out, so
    the report prices silence skipped without reading every job's manifest. Part of `UsageRollup`."""

    job: str
    media_seconds: float
    speech_seconds: float


@dataclass(frozen=True)
class UsageRollup:
    """One UTC day's usage, summed per job, task, engine, model, path and outcome
    (`runtime.records.rollup` writes and reads it). It is used only while it covers every node's
    newest compacted object; flushes after those are added raw; otherwise the day is read raw."""

    day: str
    covered: list[RollupCoverage]
    totals: list[UsageTotal]
    made_at: float
    media: list[JobMedia] = field(default_factory=list)  # the day's transcribed jobs whose manifest was complete
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
    os_uptime_seconds: float  # -1 when unknown; informational (a restart on a VM up for days reads days)
    cache_dir_had_results: bool  # a warm persistent disk
    engine: str
    version: str
    # Slot start to ready (runtime/agent/boot_clock.py); -1 when this start was not a boot (a restart),
    # and in records written before it was measured: those measure nothing.
    boot_seconds: float = -1.0
    model: str = ""  # the engine's model ("" in records written before it was kept)
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


@dataclass(frozen=True)
class BudgetAlert:
    """The month's metered spend crossed a level of its cap (``80%``, ``100%``)."""

    month: str
    level: str
    spent_usd: float
    cap_usd: float
    at: float
    v: int = 1


# A slot's power history: Azure's power states as the controller observes them (instance view, or the
# local fleet), plus the marks only the node can give. Compute is billed from allocation to
# deallocation: every state but these two is paid time (Azure bills a *stopped*, still-allocated VM).
POWER_STATES = ("starting", "running", "stopping", "stopped", "deallocating", "deallocated", "evicted")
UNBILLED_STATES = ("deallocated", "evicted")


@dataclass(frozen=True)
class PowerEvent:
    """One change in a slot's power state: the record paid GPU hours are integrated from (heartbeats
    are overwritten and audit entries are decisions, not states)."""

    slot: str
    state: str  # one of POWER_STATES
    at: float
    by: str  # observed (the controller saw it) | controller (it started or deallocated) | watcher (evicted)
    size: str = ""  # the VM size, priced per size ("" when the fleet's slots are alike)
    detail: str = ""
    v: int = 1


@dataclass(frozen=True)
class RoutingRecord:
    """Where work goes now, as the controller last decided."""

    routing: str
    at: float
    v: int = 1


@dataclass(frozen=True)
class NodeHostKeys:
    """A node's public SSH host keys, as the node itself read them from its own disk at agent start.

    Why in the store: ``spotkit node ssh|exec`` builds its known_hosts from these records, so nobody
    accepts a host key on first sight; the trust is that of the store (written by the nodes' managed
    identity), not of the network. Only public keys, never a private one (`runtime.remote.hostkeys`
    refuses anything else), and never through custom data."""

    node: str
    keys: list[str]  # OpenSSH public keys, "TYPE BASE64" (no comment), one per host key file
    published_at: float
    v: int = 1


@dataclass(frozen=True)
class ApiKey:
    """A gateway API key (``spotkit keys create``): a team's credential and its limits. Only the
    SHA-256 of the secret is kept (the secret is random and long, so a plain hash cannot be guessed
    back); ``spotkit keys revoke`` sets *revoked_at* and every gateway instance refuses it at once."""

    id: str  # the public part of the key, in its text: sk-spotkit-<id>-<secret>
    name: str  # the team or application, as usage reports split cost by it
    sha256: str
    created_at: float
    rate_per_minute: int = 60  # requests, per gateway instance
    max_upload_mb: float = 25.0  # the largest upload this key may send (OpenAI's own limit is 25 MB)
    revoked_at: float = 0.0  # 0: valid
    media_retention_days: float = 0.0  # > 0: its jobs' segment audio is deleted that long after submission
    v: int = 1


@dataclass(frozen=True)
class MediaExpired:
    """A job's segment audio was deleted under its keys' media retention (`runtime.retention`); its
    transcripts and translations are kept, so it still answers `fetch` and the gateway's cache."""

    job: str
    at: float
    key_ids: list[str]  # the keys whose retention it fell under (every key that submitted it)
    segments_deleted: int
    segments_kept: int  # still referenced by a job whose media is kept
    v: int = 1


@dataclass(frozen=True)
class JobOwner:
    """A key submitted a job through the gateway: that key (and no other) may read it. Jobs are
    content-addressed, so two teams sending the same media share the work but each needs its own mark."""

    job: str
    key_id: str
    at: float
    path: str  # fleet | api: where the gateway sent its work
    webhook: str = ""  # POSTed once the job is finished (asynchronous jobs)
    v: int = 1


@dataclass(frozen=True)
class MediaIndex:
    """Which job an upload (by its bytes' hash and the request's options) became: a second identical
    request answers from the finished job without decoding or submitting anything."""

    job: str
    upload_sha256: str
    at: float
    v: int = 1


REQUEST_PATHS = ("fleet", "api", "cache")


@dataclass(frozen=True)
class RequestRecord:
    """One transcription request through the gateway: who asked (the key), which path served it and
    what it cost, so the monthly report can split cost by team. The agents' `UsageRecord`s say what
    the engines did per segment; a job shared by two teams is in both teams' requests."""

    key_id: str
    key_name: str
    job: str
    path: str  # one of REQUEST_PATHS (cache: answered from finished results, no engine work)
    audio_seconds: float  # speech seconds of the job
    cost_usd: float  # 0 for a cache hit; an estimate from the controller's latest inputs otherwise
    priced: bool  # False when no controller decision has published prices yet (cost_usd is then 0)
    at: float
    route: str  # transcriptions | jobs
    bytes_in: int = 0
    v: int = 1
