"""What produced a result: the model's *content* and the decoding settings, as one short fingerprint.

A model name is not enough to key a cache on: ``large-v3`` republished with new weights, or the same
weights decoded with other settings, would serve stale results for ever. The fingerprint hashes every
model file's SHA-256 (from the node's model cache manifest or the store's mirror manifest, which list
them, or by reading the files) together with the engine's decoding settings. ``spotkit submit`` pins
it in the job's task options, so it is part of every segment id; an agent whose loaded model has
another fingerprint refuses the segment with the reason instead of answering it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from runtime.config import Settings
from runtime.errors import ConfigError, NotFound
from runtime.models import MANIFEST, folder_name, resolve_model_path, sha256_file
from runtime.records import model_manifest_key
from runtime.store.base import ObjectStore

# Decoding settings that change what faster-whisper writes; bump `tails` when the tail re-decoding changes.
FASTER_WHISPER_DECODING = {"pipeline": "batched", "beam_size": 5, "temperature": 0.0, "timestamps": True,
                           "tails": 1}
SIMULATED_REVISION = "simulated-1"


def fingerprint(files: dict[str, str], decoding: dict[str, object]) -> str:
    body = json.dumps({"files": dict(sorted(files.items())), "decoding": decoding}, sort_keys=True)
    return "fw-" + hashlib.sha256(body.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=16)
def _hash_files(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> dict[str, str]:
    """Keyed by names, sizes and mtimes: a process hashes a model's files once."""
    return {name: sha256_file(Path(folder) / name) for name, _, _ in stamp}


def folder_files(folder: Path) -> dict[str, str]:
    """Each model file's SHA-256: from the cache manifest when there is one, else read (memoized)."""
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
        return {str(name): str(meta["sha256"]) for name, meta in listed.items()}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    stamp = tuple((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    if not stamp:
        raise ConfigError(f"{folder}: no model files to fingerprint")
    return _hash_files(str(folder), stamp)


def folder_revision(folder: Path) -> str:
    return fingerprint(folder_files(folder), FASTER_WHISPER_DECODING)


def transcriber_revision(settings: Settings, store: ObjectStore | None = None) -> str:
    """The fingerprint of the model the configured transcriber serves, as submit must pin it.

    faster-whisper: the local model (model_path, the model cache, the packaged tiny.en), else the
    store's mirror manifest (a submitting host need not hold the weights). A metered API cannot be
    pinned: its fingerprint is its model name. The simulated engine has a fixed one.
    """
    if settings.transcriber == "simulated":
        return SIMULATED_REVISION
    if settings.transcriber == "openai":
        return f"api-{settings.model}"
    try:
        return folder_revision(Path(resolve_model_path(settings.model, settings.model_path,
                                                       settings.model_cache_dir)))
    except ConfigError:
        if store is None:
            raise
    key = model_manifest_key(folder_name(settings.model))
    try:
        listed = json.loads(store.get(key))["files"]
    except (NotFound, ValueError, KeyError, TypeError):
        raise ConfigError(f"model {settings.model!r} is neither on this machine nor in the store's mirror, so "
                          "its content cannot be pinned; publish it (`spotkit models publish`) or pull it "
                          "(`spotkit models pull`)") from None
    return fingerprint({str(n): str(m["sha256"]) for n, m in listed.items()}, FASTER_WHISPER_DECODING)
