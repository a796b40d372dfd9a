"""Settings: defaults, file, environment, validation with errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.config import load_settings, settings_env
from runtime.errors import ConfigError
from runtime.queue.factory import open_queue
from runtime.store.factory import open_store


def test_defaults_are_embedded(tmp_path: Path) -> None:
    s = load_settings(env={}, home=tmp_path)
    assert s.queue == f"sqlite://{tmp_path}/queue.db"
    assert s.queue.startswith("sqlite:///")
    assert s.store == f"file://{tmp_path}/store"
    assert (s.segment_max_seconds, s.max_deliveries, s.model) == (30.0, 5, "tiny.en")


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "spotkit.toml"
    cfg.write_text('batch_size = 4\nlease_seconds = 90\nnode_name = "from-file"\n')
    env = {"SPOTKIT_CONFIG": str(cfg), "SPOTKIT_LEASE_SECONDS": "120"}
    s = load_settings(env=env, home=tmp_path, node_name="cli")
    assert (s.batch_size, s.lease_seconds, s.node_name) == (4, 120, "cli")


@pytest.mark.parametrize("env, words", [
    ({"SPOTKIT_BATCH_SIZE": "64"}, ["batch_size", "SPOTKIT_BATCH_SIZE", "32"]),
    ({"SPOTKIT_SEGMENT_MAX_SECONDS": "45"}, ["segment_max_seconds", "30"]),
    ({"SPOTKIT_LEASE_SECONDS": "soon"}, ["lease_seconds", "SPOTKIT_LEASE_SECONDS", "int"]),
    ({"SPOTKIT_CONFIG": "/nonexistent.toml"}, ["SPOTKIT_CONFIG", "does not exist"]),
])
def test_invalid_settings_name_the_key(env: dict[str, str], words: list[str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env=env, home=tmp_path)
    for word in words:
        assert word in str(err.value)


def test_unknown_file_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("batchsize = 4\n")
    with pytest.raises(ConfigError, match="unknown key 'batchsize'"):
        load_settings(env={"SPOTKIT_CONFIG": str(cfg)}, home=tmp_path)


def test_settings_env_round_trips(tmp_path: Path) -> None:
    s = load_settings(env={}, home=tmp_path, batch_size=3, node_name="n")
    assert load_settings(env=settings_env(s)) == s


@pytest.mark.parametrize("url", ["redis://x/y", "azure-queue://acct", "sqlite://"])
def test_bad_queue_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="SPOTKIT_QUEUE"):
        open_queue(url, env={})


def test_bad_store_url() -> None:
    with pytest.raises(ConfigError, match="SPOTKIT_STORE"):
        open_store("s3://bucket", env={})


def test_every_setting_and_its_variable_is_in_the_settings_table() -> None:
    """docs/runtime.md's settings table names every field of `Settings` and its environment variable:
    a setting added without its row fails here."""
    from dataclasses import fields

    from runtime.config import Settings
    from tests.conftest import REPO

    doc = (REPO / "docs" / "runtime.md").read_text()
    table = doc[doc.index("## Settings"):].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    keys = {key for row in rows for key in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    variables = {name for row in rows for name in re.findall(r"SPOTKIT_[A-Z_]+", row.split("|")[2])}
    env = settings_env(load_settings(env={}))
    missing = [f.name for f in fields(Settings) if f.name not in keys]
    unnamed = [name for name in env if name not in variables]
    assert missing == [], f"settings missing from docs/runtime.md: {missing}"
    assert unnamed == [], f"variables missing from docs/runtime.md: {unnamed}"
