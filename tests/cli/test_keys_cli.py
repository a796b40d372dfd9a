"""``spotkit keys create|list|revoke``: the key shown once, only its hash kept, revocation seen by
`authenticate`, bad input one line and exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from runtime.gateway.apikeys import KeyRefused, authenticate
from runtime.records import GATEWAY_KEYS
from runtime.store.file_store import FileStore
from spotkit.cli import main
from tests.cli.test_cli import spotkit


def test_create_list_revoke(tmp_path: Path) -> None:
    home = tmp_path / "home"
    created = spotkit(home, "keys", "create", "team-search", "--rate-per-minute", "120", "--json")
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    text, key_id = issued["key"], issued["id"]
    assert text.startswith(f"sk-spotkit-{key_id}-") and issued["rate_per_minute"] == 120
    store = FileStore(home / "store")
    [where] = store.list(GATEWAY_KEYS)
    assert text.split("-", 3)[3] not in store.get(where).decode()  # only the hash is kept
    assert authenticate(store, f"Bearer {text}").name == "team-search"

    listed = spotkit(home, "keys", "list", "--json")
    assert [(k["id"], k["name"], k["revoked_at"]) for k in json.loads(listed.stdout)] == [(key_id, "team-search", 0)]
    assert text.split("-", 3)[3] not in listed.stdout and "sha256" not in listed.stdout
    assert key_id in spotkit(home, "keys", "list").stdout

    revoked = spotkit(home, "keys", "revoke", key_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    with pytest.raises(KeyRefused, match="revoked"):
        authenticate(store, f"Bearer {text}")
    assert json.loads(spotkit(home, "keys", "list", "--json").stdout)[0]["revoked_at"] > 0


@pytest.mark.parametrize("args", [("keys", "create", "team search"), ("keys", "create", "t", "--rate-per-minute", "0"),
                                  ("keys", "revoke", "nope"), ("keys", "revoke", "0123456789ab"),
                                  ("jobs", "delete", "nope"), ("jobs", "delete", "0123456789abcdef01234567"),
                                  ("keys", "create", "t", "--media-retention-days", "nan"),
                                  ("keys", "create", "t", "--media-retention-days", "-3"),
                                  ("keys", "retention", "0123456789ab", "7"), ("keys", "retention", "nope", "7")])
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), *args], env={})
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1
    assert result.output.startswith("error: ") and len(result.output.splitlines()) == 1


def test_media_retention_is_set_shown_and_applied_by_jobs_expire(tmp_path: Path) -> None:
    home = tmp_path / "home"
    created = json.loads(spotkit(home, "keys", "create", "team-legal", "--media-retention-days", "30",
                                 "--json").stdout)
    assert created["media_retention_days"] == 30
    assert "30 days" in spotkit(home, "keys", "list").stdout
    changed = spotkit(home, "keys", "retention", created["id"], "0")
    assert changed.returncode == 0 and "until deleted" in changed.stdout
    assert json.loads(spotkit(home, "keys", "list", "--json").stdout)[0]["media_retention_days"] == 0
    refused = spotkit(home, "keys", "retention", created["id"], "1e9")
    assert refused.returncode == 1 and refused.stderr.startswith("error: --media-retention-days")
    dry = spotkit(home, "jobs", "expire", "--dry-run")
    assert dry.returncode == 0 and "0 jobs past their media retention (dry run)" in dry.stderr
