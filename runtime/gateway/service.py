"""What the gateway does with a request, apart from HTTP: check its options, find it in the cache,
route it, submit it, follow it to the end, render it, and record who asked and what it cost.

Stateless by design: everything an instance knows it reads from the store (keys, routing, jobs,
results) or keeps only as a short-lived cache, so several instances behind a load balancer share
only the queue and the store. Submission is `runtime.jobs.submit` on the spooled file's path — the
same call as ``spotkit submit`` — so bad media leaves nothing enqueued.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.config import Settings
from runtime.errors import ConfigError, NotFound, SpotkitError
from runtime.gateway.responses import RESPONSE_FORMATS, all_results, body_for
from runtime.gateway.routing import Choice, boot_seconds, choose_path, cost_usd
from runtime.gateway.uploads import Upload
from runtime.jobs import SubmitReport, assemble, load_manifest, submit
from runtime.languages import check_spoken
from runtime.queue.base import WorkQueue
from runtime.records import (
    ApiKey,
    AuditRecord,
    BadRecord,
    JobOwner,
    MediaIndex,
    RequestRecord,
    RoutingRecord,
    day_of,
    dump,
    gateway_request_key,
    job_owner_key,
    load,
    media_index_key,
    poison_key,
    read_heartbeats,
    read_latest_audit,
    read_routing,
    result_key,
)
from runtime.schedule import PRIORITIES, parse_duration
from runtime.store.base import ObjectStore
from runtime.work import TaskOptions, TranscriptResult

WHISPER_ALIAS = "whisper-1"  # what applications written for OpenAI ask for: served by the fleet's model
GRANULARITIES = ("segment", "word")
DECISION_TTL_SECONDS = 5.0  # routing, prices and fleet liveness are re-read at most this often


def check_webhook(url: str) -> None:
    """An http(s) URL, and not the machine's metadata service or another link-local address: the
    gateway POSTs there from inside the VNet, so a caller must not aim it at what only the VM may reach."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadRequest("webhook must be an http(s) URL", "webhook")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        address = None
    if (address is not None and (address.is_link_local or address.is_unspecified or address.is_multicast)) \
            or parts.hostname.lower() in ("metadata", "metadata.azure.internal"):
        raise BadRequest(f"webhook host {parts.hostname} is the metadata service or link-local; "
                         "give your service's address", "webhook")


class BadRequest(SpotkitError):
    """The request cannot be served as asked: 400 with this message, nothing submitted."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Asked:
    """A request's options, checked."""

    options: TaskOptions
    response_format: str
    deadline_seconds: float
    priority: str
    ignored: tuple[str, ...] = ()  # fields accepted and not applied (named in a response header)
    webhook: str = ""


@dataclass
class Progress:
    total: int
    done: int = 0
    poisoned: list[str] = field(default_factory=list)  # reasons

    @property
    def finished(self) -> bool:
        return self.done + len(self.poisoned) >= self.total


@dataclass
class _Decision:
    routing: RoutingRecord | None
    audit: AuditRecord | None
    fleet_up: bool
    read_at: float


class Gateway:
    def __init__(self, settings: Settings, store: ObjectStore, queue: WorkQueue, api_queue: WorkQueue,
                 revision: str, clock: Callable[[], float] = time.time) -> None:
        self.settings, self.store, self.queue, self.api_queue = settings, store, queue, api_queue
        self.revision, self.clock = revision, clock
        self.instance = uuid.uuid4().hex[:8]
        self._decision: _Decision | None = None
        self._lock = threading.Lock()

    @property
    def models(self) -> tuple[str, ...]:
        return (self.settings.model, WHISPER_ALIAS) if self.settings.model != WHISPER_ALIAS else (WHISPER_ALIAS,)

    # -- the request ---------------------------------------------------------------------------
    def ask(self, upload: Upload, synchronous: bool, wait_seconds: float) -> Asked:
        """The upload's options checked, or `BadRequest` naming the field."""
        if upload.path is None:
            raise BadRequest("no file: send the media as the multipart part 'file'", "file")
        if upload.size == 0:
            raise BadRequest(f"the file {upload.filename!r} is empty", "file")
        model = upload.value("model")
        if model not in self.models:
            raise BadRequest(f"unknown model {model!r}: this gateway serves {', '.join(self.models)} "
                             "(GET /v1/models)", "model")
        fmt = upload.value("response_format", "json")
        if fmt not in RESPONSE_FORMATS:
            raise BadRequest(f"response_format {fmt!r}: use one of {', '.join(RESPONSE_FORMATS)}", "response_format")
        granularities = upload.values("timestamp_granularities")
        unknown = [g for g in granularities if g not in GRANULARITIES]
        if unknown:
            raise BadRequest(f"timestamp_granularities {unknown[0]!r}: use segment or word", "timestamp_granularities")
        language = upload.value("language", self.settings.language)
        try:
            check_spoken(language, self.settings.model, where="language")
        except ConfigError as err:
            raise BadRequest(str(err), "language") from None
        ignored = tuple(name for name in ("prompt", "temperature") if upload.value(name) not in ("", "0", "0.0"))
        priority = upload.value("priority", "high" if synchronous else self.settings.priority)
        if priority not in PRIORITIES:
            raise BadRequest(f"priority {priority!r}: use high, normal or low", "priority")
        deadline = upload.value("deadline", self.settings.deadline)
        try:
            deadline_seconds = wait_seconds if synchronous else (
                parse_duration(deadline, where="deadline") if deadline else PRIORITIES[priority])
        except ConfigError as err:
            raise BadRequest(str(err), "deadline") from None
        webhook = upload.value("webhook")
        if webhook:
            check_webhook(webhook)
        options = TaskOptions(model=self.settings.model, language=language, word_timestamps="word" in granularities,
                              revision=self.revision)
        return Asked(options, fmt, deadline_seconds, priority, ignored, webhook)

    def _media_digest(self, upload: Upload, options: TaskOptions) -> str:
        basis = json.dumps({"upload": upload.sha256, "options": options.as_dict(),
                            "segment_max_seconds": self.settings.segment_max_seconds}, sort_keys=True)
        return hashlib.sha256(basis.encode()).hexdigest()

    def cached_job(self, upload: Upload, options: TaskOptions) -> str | None:
        """The finished job identical media with the same options became, if any: a cache hit."""
        where = media_index_key(self._media_digest(upload, options))
        try:
            job = load(MediaIndex, self.store.get(where), where).job
            manifest = load_manifest(self.store, job)
        except (NotFound, BadRecord, SpotkitError):
            return None
        done = all(self.store.exists(result_key(manifest.options.task, ref.id)) for ref in manifest.segments)
        return job if done else None

    # -- routing -------------------------------------------------------------------------------
    def decision(self) -> _Decision:
        now = self.clock()
        with self._lock:
            if self._decision is None or now - self._decision.read_at > DECISION_TTL_SECONDS:
                days = [day_of(now), day_of(now - 86400)]
                max_age = max(30.0, 3 * self.settings.heartbeat_seconds)
                # API workers heartbeat too; they are named api-N (spotkit.controller.api_path).
                fleet_up = any(b.is_fresh(now, max_age) and not b.node.startswith("api-")
                               and b.state in ("idle", "working") for b in read_heartbeats(self.store))
                self._decision = _Decision(read_routing(self.store), read_latest_audit(self.store, days),
                                           fleet_up, now)
            return self._decision

    def choose(self, deadline_seconds: float) -> Choice:
        d = self.decision()
        return choose_path(d.routing, self.clock(), deadline_seconds, d.fleet_up, boot_seconds(d.audit))

    # -- work ----------------------------------------------------------------------------------
    def submit(self, upload: Upload, asked: Asked, path: str, key: ApiKey) -> SubmitReport:
        """Submit the spooled upload to the queue of *path*; mark the job as this key's."""
        assert upload.path is not None
        queue = self.api_queue if path == "api" else self.queue
        report = submit(upload.path, queue, self.store, asked.options, self.settings.segment_max_seconds,
                        priority=asked.priority, deadline=f"{max(1, math.ceil(asked.deadline_seconds))}s")
        self.store.put(media_index_key(self._media_digest(upload, asked.options)),
                       dump(MediaIndex(report.job, upload.sha256, self.clock())))
        self.own(key, report.job, path, asked.webhook)
        return report

    def own(self, key: ApiKey, job: str, path: str, webhook: str = "") -> None:
        where = job_owner_key(job, key.id)
        record = dump(JobOwner(job, key.id, self.clock(), path, webhook))
        if not self.store.put_if_absent(where, record) and webhook:
            self.store.put(where, record)  # a new webhook for a job this key sent before

    def owner(self, key: ApiKey, job: str) -> JobOwner | None:
        """This key's mark on *job*, or None: a key reads only the jobs it submitted."""
        where = job_owner_key(job, key.id)
        try:
            return load(JobOwner, self.store.get(where), where)
        except (NotFound, BadRecord):
            return None

    def progress(self, job: str) -> Progress:
        """How far *job* is (one existence check per unfinished segment: cheap enough to poll)."""
        manifest = load_manifest(self.store, job)
        task = manifest.options.task
        progress = Progress(len(manifest.segments))
        for ref in manifest.segments:
            if self.store.exists(result_key(task, ref.id)):
                progress.done += 1
            elif self.store.exists(poison_key(ref.id)):
                try:
                    reason = json.loads(self.store.get(poison_key(ref.id))).get("reason", "")
                except (NotFound, ValueError):
                    reason = ""
                progress.poisoned.append(f"segment {ref.index}: {reason}".rstrip(": "))
        return progress

    def render(self, job: str, fmt: str) -> tuple[str, str]:
        manifest, cues = assemble(self.store, job)
        return body_for(fmt, cues, self._language(job), manifest.duration_seconds)

    def results(self, job: str) -> dict[str, Any]:
        manifest, cues = assemble(self.store, job)
        return all_results(cues, self._language(job), manifest.duration_seconds)

    def _language(self, job: str) -> str:
        manifest = load_manifest(self.store, job)
        if manifest.options.language or not manifest.segments:
            return manifest.options.language or "en"
        first = result_key(manifest.options.task, manifest.segments[0].id)
        try:
            return TranscriptResult.from_bytes(self.store.get(first), first).language or "en"
        except (NotFound, SpotkitError):
            return "en"

    def speech_seconds(self, job: str) -> float:
        return load_manifest(self.store, job).speech_seconds

    # -- usage ---------------------------------------------------------------------------------
    def record(self, key: ApiKey, job: str, path: str, audio_seconds: float, route: str, bytes_in: int) -> float:
        """One `RequestRecord` (caller, path, cost); returns the cost estimate."""
        now = self.clock()
        cost, priced = cost_usd(path, audio_seconds, self.decision().audit)
        record = RequestRecord(key.id, key.name, job, path, round(audio_seconds, 3), cost, priced, now, route,
                               bytes_in)
        self.store.put_if_absent(gateway_request_key(day_of(now), int(now * 1000), self.instance,
                                                     uuid.uuid4().hex[:8]), dump(record))
        return cost
