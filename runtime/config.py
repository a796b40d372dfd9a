"""Runtime settings: defaults, then a TOML file (``SPOTKIT_CONFIG``), then ``SPOTKIT_*`` variables.

Settings are validated once, up front, and every error names the setting (file key and variable) and
the fix. Nothing here is global: callers build a `Settings` and pass it down.
"""

from __future__ import annotations

import math
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError
from runtime.languages import check_spoken
from runtime.schedule import check_priority, parse_duration
from runtime.subtitles.limits import CUE_STYLES, CueLimits
from runtime.urls import QUEUE_SCHEMES, STORE_SCHEMES, parse_backend_url

BOOT_CLOCKS = ("process", "os")  # where a slot starts: runtime/agent/boot_clock.py


def default_home() -> Path:
    return Path.home() / ".local" / "share" / "spotkit"


@dataclass(frozen=True)
class Settings:
    """Everything a node or a CLI call needs to find its queue, store, cache and engine."""

    home: Path
    queue: str
    store: str
    node_name: str
    cache_dir: Path
    segment_max_seconds: float = 30.0
    max_deliveries: int = 5
    lease_seconds: int = 60
    batch_size: int = 8
    idle_seconds: float = 3.0
    # An idle agent's receives back off from 0.25 s, doubling to this, and start over when work comes:
    # 500 idle nodes polling every 0.25 s would spend one Azure queue's whole 2,000 operations/s.
    idle_poll_max_seconds: float = 2.0
    heartbeat_seconds: float = 5.0
    retry_seconds: float = 2.0
    store_retry_seconds: float = 300.0  # how long a fresh result's upload is retried through a store outage
    # Prior for the drain decision until the first batch is measured (engine s per audio s).
    engine_seconds_per_audio_second: float = 0.05
    # Eviction handling (docs/eviction.md).
    scheduled_events: str = "auto"  # auto (on when running on Azure) | on | off
    imds_endpoint: str = "http://169.254.169.254"
    imds_poll_seconds: float = 1.0
    vm_name: str = ""  # the name events must carry; default SPOTKIT_NODE_NAME if set, else IMDS's
    safety_margin_seconds: float = 5.0
    sigterm_grace_seconds: float = 20.0
    acknowledge_events: bool = True
    alert_webhook: str = ""
    eviction_alerts: str = "each"  # each (a page per spot eviction) | digest (one a day from the controller)
    eviction_storm_count: int = 3  # this many spot evictions within eviction_storm_minutes page once as a storm
    eviction_storm_minutes: float = 60.0
    runbook_base_url: str = ""  # where docs/runbooks is served; "" = the deployed version's (stack: runbookBaseUrl)
    metrics_port: int = 0
    # Where a slot starts, for the boot-time measurement: "process" (this agent process: local slots,
    # laptops) or "os" (the OS boot: spot VMs, set in the node's agent.env). runtime/agent/boot_clock.py
    boot_clock: str = "process"
    transcriber: str = "faster-whisper"  # or "openai" (metered API), "simulated" (rehearsals, chaos tests)
    simulated_speed: float = 20.0  # the simulated engine's audio seconds per second
    translator: str = "none"  # or "openai" (metered API), "vllm" (the node's vLLM server)
    metered_api: str = "openai"  # or "azure-openai" (Entra ID or a key; docs/engines.md)
    api_model: str = ""  # the metered transcription model or deployment (e.g. whisper-1); "" = `model`
    translator_model: str = "gpt-4o-mini"
    vllm_url: str = "http://127.0.0.1:8000/v1"
    vllm_command: str = ""  # replaces the `vllm` executable (rehearsals and tests); the flags stay real
    model: str = "tiny.en"
    model_path: str = ""
    model_cache_dir: Path = Path()  # default <home>/models; /mnt/spotkit/models on nodes
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 0
    # Fleet nodes answer from a result a metered API made (the hybrid's default: that work is done and
    # paid for); false: a fleet node redoes such a segment with its own engine and replaces the result.
    serve_metered_results: bool = True
    language: str = ""
    priority: str = "normal"  # a submission's default priority: high (due in 1 h), normal (6 h), low (24 h)
    deadline: str = ""  # a submission's default deadline, e.g. 6h; "" = the priority's
    # Subtitles (docs/subtitles.md): readable cues on word timings, within these limits (Netflix's defaults).
    word_timestamps: bool = True  # submit asks the engine for word timings (what readable cues are cut on)
    cue_style: str = "readable"  # readable | none (the engine's own segments, one cue each)
    cue_max_line_chars: int = 42
    cue_max_lines: int = 2
    cue_max_seconds: float = 7.0
    cue_min_seconds: float = 5 / 6
    cue_max_chars_per_second: float = 20.0
    cue_min_gap_seconds: float = 2 / 24

    def cue_limits(self) -> CueLimits:
        return CueLimits(self.cue_max_line_chars, self.cue_max_lines, self.cue_max_seconds, self.cue_min_seconds,
                         self.cue_max_chars_per_second, self.cue_min_gap_seconds)

    def validate(self) -> Settings:
        checks: list[tuple[str, bool, str]] = [
            ("segment_max_seconds", 1.0 <= self.segment_max_seconds <= 30.0,
             "must be between 1 and 30 seconds (Whisper's window is 30 s)"),
            ("max_deliveries", self.max_deliveries >= 1, "must be at least 1"),
            ("lease_seconds", 1 <= self.lease_seconds <= 7 * 24 * 3600,
             "must be 1 s to 7 days (Azure's visibility-timeout range)"),
            ("batch_size", 1 <= self.batch_size <= 32, "must be 1..32 (Azure returns at most 32 messages)"),
            ("idle_seconds", self.idle_seconds > 0, "must be positive"),
            ("idle_poll_max_seconds", 0.25 <= self.idle_poll_max_seconds <= 60, "must be 0.25 to 60 seconds"),
            ("heartbeat_seconds", self.heartbeat_seconds > 0, "must be positive"),
            ("retry_seconds", self.retry_seconds >= 0, "must be 0 or more"),
            ("store_retry_seconds", self.store_retry_seconds >= 0, "must be 0 or more"),
            ("metrics_port", 0 <= self.metrics_port <= 65535, "must be a TCP port, or 0 for none"),
            ("boot_clock", self.boot_clock in BOOT_CLOCKS, f"must be one of {', '.join(BOOT_CLOCKS)}"),
            ("cpu_threads", self.cpu_threads >= 0, "must be 0 (automatic) or more"),
            ("node_name", bool(self.node_name.strip()), "must not be empty"),
            ("model", bool(self.model.strip()) or bool(self.model_path), "name a model or a model_path"),
            ("transcriber", self.transcriber in ("faster-whisper", "openai", "simulated"),
             "must be faster-whisper, openai or simulated"),
            ("simulated_speed", self.simulated_speed > 0, "must be positive"),
            ("translator", self.translator in ("none", "openai", "vllm"), "must be none, openai or vllm"),
            ("metered_api", self.metered_api in ("openai", "azure-openai"), "must be openai or azure-openai"),
            ("scheduled_events", self.scheduled_events in ("auto", "on", "off"), "must be auto, on or off"),
            ("imds_endpoint", self.imds_endpoint.startswith(("http://", "https://")),
             "must be an http(s) URL"),
            ("eviction_alerts", self.eviction_alerts in ("each", "digest"), "must be each or digest"),
            ("eviction_storm_count", self.eviction_storm_count >= 1, "must be at least 1"),
            ("eviction_storm_minutes", 0 < self.eviction_storm_minutes <= 7 * 24 * 60,
             "must be more than 0 and at most a week of minutes"),
            ("runbook_base_url", self.runbook_base_url == "" or self.runbook_base_url.startswith(("https://", "http://")),
             "must be an http(s) URL where docs/runbooks is served, or empty for the deployed version's"),
            ("imds_poll_seconds", 0 < self.imds_poll_seconds <= 60, "must be in (0, 60]"),
            ("safety_margin_seconds", self.safety_margin_seconds >= 0, "must be 0 or more"),
            ("sigterm_grace_seconds", self.sigterm_grace_seconds >= 0, "must be 0 or more"),
            ("engine_seconds_per_audio_second", self.engine_seconds_per_audio_second > 0,
             "must be positive"),
            ("cue_style", self.cue_style in CUE_STYLES, f"must be one of {', '.join(CUE_STYLES)}"),
            ("cue_max_line_chars", 10 <= self.cue_max_line_chars <= 200, "must be 10..200 characters"),
            ("cue_max_lines", 1 <= self.cue_max_lines <= 4, "must be 1..4 lines"),
            ("cue_max_seconds", 1.0 <= self.cue_max_seconds <= 60.0, "must be 1..60 seconds"),
            ("cue_min_seconds", 0 <= self.cue_min_seconds < self.cue_max_seconds,
             "must be 0 or more and below cue_max_seconds"),
            ("cue_max_chars_per_second", 5 <= self.cue_max_chars_per_second <= 100,
             "must be 5..100 characters per second"),
            ("cue_min_gap_seconds", 0 <= self.cue_min_gap_seconds <= 1.0, "must be 0..1 seconds"),
        ]
        for key, ok, why in checks:
            if not ok:
                raise ConfigError(f"{key} = {getattr(self, key)!r} {why} ({_where(key)})")
        check_spoken(self.language, self.model, where=f"language ({_where('language')})")
        check_priority(self.priority, where=f"priority ({_where('priority')})")
        if self.deadline:
            parse_duration(self.deadline, where=f"deadline ({_where('deadline')})")
        parse_backend_url(self.queue, "SPOTKIT_QUEUE", QUEUE_SCHEMES)
        parse_backend_url(self.store, "SPOTKIT_STORE", STORE_SCHEMES)
        return self


def _where(key: str) -> str:
    return f"set it with {ENV_PREFIX}{key.upper()} or `{key}` in the config file"


ENV_PREFIX = "SPOTKIT_"
# Environment names that differ from the upper-cased field name.
_ENV_ALIASES = {"queue": "SPOTKIT_QUEUE", "store": "SPOTKIT_STORE"}


def _coerce(key: str, raw: Any, kind: type, source: str) -> Any:
    try:
        if kind is Path:
            return Path(str(raw)).expanduser()
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            spelled = str(raw).strip().lower()
            if spelled not in _TRUE + _FALSE:
                raise ValueError(f"not one of {', '.join(_TRUE + _FALSE)}")
            return spelled in _TRUE
        value = kind(raw)
        if kind is float and not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    except (TypeError, ValueError, OverflowError) as err:
        raise ConfigError(
            f"{key} = {raw!r} from {source} is not a valid {kind.__name__} ({err}); fix it in {source}"
        ) from None


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build validated settings from defaults, the config file, the environment and overrides."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    types = {f.name: _field_type(f.type) for f in fields(Settings)}

    config_path = env.get("SPOTKIT_CONFIG")
    if config_path:
        values.update(_read_config_file(Path(config_path), types))
    for key, kind in types.items():
        name = _ENV_ALIASES.get(key, ENV_PREFIX + key.upper())
        if env.get(name):
            values[key] = _coerce(key, env[name], kind, f"environment variable {name}")
    for key, value in overrides.items():
        if value is not None:
            values[key] = _coerce(key, value, types[key], "the command line")

    home = Path(values.get("home") or default_home()).absolute()
    values["home"] = home
    values.setdefault("queue", f"sqlite://{home / 'queue.db'}")
    values.setdefault("store", f"file://{home / 'store'}")
    if values.get("node_name") and not values.get("vm_name"):
        values["vm_name"] = values["node_name"]  # an explicit node name is the VM name events carry
    values.setdefault("node_name", socket.gethostname())
    values.setdefault("cache_dir", home / "cache")
    values.setdefault("model_cache_dir", home / "models")
    return Settings(**values).validate()


def _field_type(annotation: Any) -> type:
    mapping = {"Path": Path, "str": str, "int": int, "float": float, "bool": bool}
    return mapping[str(annotation)]


def _read_config_file(path: Path, types: dict[str, type]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"SPOTKIT_CONFIG points at {path}, which does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"SPOTKIT_CONFIG points at {path}, a directory; name the TOML file in it") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"SPOTKIT_CONFIG: cannot read {path} ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in types:
            known = ", ".join(sorted(types))
            raise ConfigError(f"unknown key {key!r} in config file {path}; known keys: {known}")
        values[key] = _coerce(key, raw, types[key], f"config file {path}")
    return values


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process load exactly these settings."""
    env = {}
    for f in fields(Settings):
        name = _ENV_ALIASES.get(f.name, ENV_PREFIX + f.name.upper())
        env[name] = str(getattr(settings, f.name))
    return env
