"""The store's layout: every key prefix spelled once, and the functions that build keys under them.

Writers and readers on every side import these, so a key cannot drift between the one who writes it
and the one who reads it. ``LAYOUT`` is the table that docs/runtime.md shows; a test holds the two
together (``python -m runtime.records`` prints it).
"""

from __future__ import annotations

from datetime import UTC, datetime

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
USAGE_ROLLUPS = "usage-rollups/"
COMPACTED_SUFFIX = "compacted.jsonl.gz"
HEARTBEATS = "heartbeats/"
EVICTIONS = "evictions/"
BOOTS = "boots/"
DRAIN_REQUESTS = "drain-requests/"
DRAINED_FOR = "drained-events/"
AUDIT = "audit/controller/"
POWER = "power/"
CONTROL = "control/"
MODELS = "models/"
HOST_KEYS = "hostkeys/"
GATEWAY = "gateway/"
GATEWAY_KEYS = f"{GATEWAY}keys/"
GATEWAY_REQUESTS = f"{GATEWAY}requests/"
GATEWAY_OWNERS = f"{GATEWAY}owners/"
MEDIA_EXPIRED = f"{GATEWAY}media-expired/"

# (key pattern, written by, how): the store-layout table of docs/runtime.md.
LAYOUT: tuple[tuple[str, str, str], ...] = (
    (f"{JOBS}<job>.json", "submit", "`JobManifest`: state `reading` (rewritten as segments are found, each before "
     "it is enqueued), then `complete` (or `failed`)"),
    (f"{SEGMENTS}<segment>.flac", "submit", "write-if-absent"),
    (f"{TRANSCRIPTS}<segment>.json", "agent", "write-if-absent: the first writer wins, later ones reuse it"),
    (f"{TRANSLATIONS}<hash>.json", "agent", "keyed by (transcript, model, language, prompt version)"),
    (
        f"{POISONED}<segment>.json, …/<segment>-translate-<lang>.json",
        "agent",
        "why a segment (or its translation) was poisoned (`PoisonRecord`, for `status`)",
    ),
    (
        f"{QUEUED}<segment>.json",
        "submit",
        "the segment is in the queue for that job (`QueuedRecord`): a resubmit does not enqueue it twice",
    ),
    (
        f"{BACKLOG}<ms>-<job>.json",
        "submit",
        "what one submission queued (one per batch, as a streaming submit enqueues), by when and how urgently "
        "(`BacklogRecord`): "
        "the controller plans against it; deleted by the controller once done",
    ),
    (f"{HEARTBEATS}<node>.json", "agent", "overwritten every `heartbeat_seconds` (`Heartbeat`)"),
    (
        f"{USAGE}day=YYYY-MM-DD/node=NAME/<ms>-<rand>.jsonl",
        "agent",
        "append-only, one new object per flush (`UsageRecord` lines)",
    ),
    (
        f"{USAGE}day=YYYY-MM-DD/node=NAME/<stem>.compacted.jsonl.gz",
        "controller (each UTC day's first round), `spotkit usage compact`",
        "a node-day's flushes merged into one gzip object (they are deleted after): covers every flush "
        "up to its stem; later flushes are read beside it",
    ),
    (
        f"{USAGE_ROLLUPS}day=YYYY-MM-DD.json",
        "controller, `spotkit usage compact`",
        "overwritten: the day's usage summed per node, job, engine, model, path and outcome (`UsageRollup`), "
        "what the report and the API budget read",
    ),
    (f"{BOOTS}day=YYYY-MM-DD/<node>-<ms>.json", "agent", "when the engine became ready (`BootRecord`)"),
    (
        f"{EVICTIONS}day=YYYY-MM-DD/<node>-<event>.json",
        "watcher",
        "one per drain: eviction, SIGTERM, operator (`EvictionRecord`)",
    ),
    (f"{DRAIN_REQUESTS}<node>.json", "`spotkit node drain`", "deleted by `undrain` (`DrainRequest`)"),
    (
        f"{DRAINED_FOR}<event>/<vm>.json",
        "watcher",
        "this VM drained for an event naming several (`DrainedMarker`): the last to drain acknowledges",
    ),
    (f"{AUDIT}day=YYYY-MM-DD/<ms>-<rand>.json", "controller", "every scaling decision (`AuditRecord`)"),
    (f"{CONTROL}routing.json", "controller", "the current routing (`RoutingRecord`)"),
    (
        f"{POWER}day=YYYY-MM-DD/<slot>/<ms>-<state>.json",
        "controller, watcher",
        "each change of a slot's power state, and evictions (`PowerEvent`): paid GPU hours",
    ),
    (
        f"{CONTROL}budget-alerts/YYYY-MM-<level>.json",
        "controller",
        "write-if-absent: the month's API spend crossed 80 % / 100 % of its cap, alerted once (`BudgetAlert`)",
    ),
    (
        f"{CONTROL}alerts/<kind>-<period>.json",
        "controller",
        "write-if-absent: an eviction storm (per window) or digest (per day) was alerted once",
    ),
    (f"{CONTROL}doctor/<node>.json", "`spotkit doctor`", "its write-and-read-back check, overwritten each run"),
    (
        f"{MODELS}<model>/manifest.json, …/files/<file>",
        "`spotkit models publish`",
        "the model mirror, manifest written last",
    ),
    (
        f"{HOST_KEYS}<node>.json",
        "`spotkit node publish-host-keys` (the agent unit, at every start)",
        "overwritten: the node's public SSH host keys (`NodeHostKeys`), "
        "what `spotkit node ssh`, `exec`, `logs` and `restart` build known_hosts from",
    ),
    (
        f"{GATEWAY_KEYS}<key id>.json",
        "`spotkit keys create`, `revoke`",
        "a gateway API key: its SHA-256 only, never the secret, and its limits (`ApiKey`)",
    ),
    (
        f"{GATEWAY_OWNERS}<job>/<key id>.json",
        "`spotkit serve`",
        "write-if-absent: this key submitted this job, so it may read it (`JobOwner`)",
    ),
    (
        f"{MEDIA_EXPIRED}<job>.json",
        "controller (`spotkit jobs expire`)",
        "write-if-absent: the job's segment audio was deleted under its keys' media retention; its results "
        "are kept (`MediaExpired`)",
    ),
    (
        f"{GATEWAY}media/<sha256 of upload and options>.json",
        "`spotkit serve`",
        "overwritten: the job identical media with the same options made (`MediaIndex`): the cache hit",
    ),
    (
        f"{GATEWAY_REQUESTS}day=YYYY-MM-DD/<ms>-<instance>-<rand>.json",
        "`spotkit serve`",
        "one per transcription request: caller, path, audio and cost (`RequestRecord`), for the report",
    ),
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


def usage_rollup_key(day: str) -> str:
    return f"{USAGE_ROLLUPS}day={day}.json"


def usage_compacted_key(day: str, node: str, through: str) -> str:
    """A node-day's raw usage merged into one object, covering every flush up to the stem *through*."""
    return f"{usage_prefix(day)}node={node}/{through}.{COMPACTED_SUFFIX}"


def usage_key_parts(key: str) -> tuple[str, str, str, bool] | None:
    """(day, node, stem, compacted) of a usage key (``usage/day=D/node=N/<stem>.jsonl`` or a compacted
    ``…/<stem>.compacted.jsonl.gz``); None for any other key. Stems sort by flush time."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] + "/" != USAGE or not parts[1].startswith("day=") \
            or not parts[2].startswith("node="):
        return None
    name = parts[3]
    compacted = name.endswith("." + COMPACTED_SUFFIX)
    return parts[1][4:], parts[2][5:], name.split(".", 1)[0], compacted


def usage_key(day: str, node: str, stamp_ms: int, suffix: str) -> str:
    return f"{usage_prefix(day)}node={node}/{stamp_ms:015d}-{suffix}.jsonl"


def boot_key(day: str, node: str, stamp_ms: int) -> str:
    return f"{BOOTS}day={day}/{node}-{stamp_ms}.json"


def boot_key_parts(key: str) -> tuple[str, int] | None:
    """(node, stamp in ms) of a `boot_key`; None for anything else under the prefix."""
    if not key.startswith(f"{BOOTS}day=") or not key.endswith(".json"):
        return None
    node, _, stamp = key.rsplit("/", 1)[-1].removesuffix(".json").rpartition("-")
    return (node, int(stamp)) if node and stamp.isdigit() else None


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


def power_prefix(day: str | None = None) -> str:
    return f"{POWER}day={day}/" if day else POWER


def power_key(day: str, slot: str, stamp_ms: int, state: str) -> str:
    return f"{power_prefix(day)}{slot}/{stamp_ms:015d}-{state}.json"


def backlog_key(job: str, stamp_ms: int) -> str:
    return f"{BACKLOG}{stamp_ms:015d}-{job}.json"


ROUTING_KEY = f"{CONTROL}routing.json"


def budget_alert_key(month: str, level: str) -> str:
    """One marker per month and level: written if absent, so the alert fires once."""
    return f"{CONTROL}budget-alerts/{month}-{level}.json"


def alert_marker_key(kind: str, period: str) -> str:
    """One marker per alert and period (a storm's window, a digest's day): written if absent, so the
    alert goes out once however many controller rounds see the same thing."""
    return f"{CONTROL}alerts/{kind}-{period}.json"


def doctor_key(node: str) -> str:
    """`spotkit doctor`'s write check: overwritten each run, so the store holds one per machine."""
    return f"{CONTROL}doctor/{node}.json"


def model_prefix(folder: str) -> str:
    """The mirror of one model (*folder* is `runtime.models.folder_name` of it)."""
    return f"{MODELS}{folder}/"


def model_manifest_key(folder: str) -> str:
    return f"{model_prefix(folder)}manifest.json"


def model_file_key(folder: str, name: str) -> str:
    return f"{model_prefix(folder)}files/{name}"


def host_keys_key(node: str) -> str:
    return f"{HOST_KEYS}{node}.json"


def api_key_key(key_id: str) -> str:
    return f"{GATEWAY_KEYS}{key_id}.json"


def job_owners_prefix(job: str) -> str:
    return f"{GATEWAY_OWNERS}{job}/"


def media_expired_key(job: str) -> str:
    return f"{MEDIA_EXPIRED}{job}.json"


def job_owner_key(job: str, key_id: str) -> str:
    return f"{job_owners_prefix(job)}{key_id}.json"


def media_index_key(digest: str) -> str:
    return f"{GATEWAY}media/{digest}.json"


def gateway_requests_prefix(day: str | None = None) -> str:
    return f"{GATEWAY_REQUESTS}day={day}/" if day else GATEWAY_REQUESTS


def gateway_request_key(day: str, stamp_ms: int, instance: str, suffix: str) -> str:
    return f"{gateway_requests_prefix(day)}{stamp_ms:015d}-{instance}-{suffix}.json"


def layout_table() -> str:
    """`LAYOUT` as the Markdown table of docs/runtime.md (``python -m runtime.records`` prints it)."""
    rows = "\n".join(f"| `{key}` | {who} | {how} |" for key, who, how in LAYOUT)
    return f"| key | written by | how |\n| --- | --- | --- |\n{rows}"
