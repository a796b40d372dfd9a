"""Bad input, as a user types it: one clear line, a non-zero exit, no traceback, nothing queued."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.config import load_settings
from runtime.errors import ConfigError, SpotkitError, StoreError
from runtime.store.file_store import FileStore
from spotkit.cli import main
from tests.conftest import DEMO_SAMPLE

SPARSE = Path(__file__).resolve().parents[2] / "policies" / "data" / "traces" / "sparse.csv"
JOB = "0123456789abcdef01234567"


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), *args], env=env or {})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def nan_trace(tmp_path: Path) -> str:
    path = tmp_path / "nan.csv"
    path.write_text("timestamp,audio_seconds,tokens\n2026-11-01T00:00:00Z,nan,3\n")
    return str(path)


def binary(tmp_path: Path) -> str:
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)
    return str(tmp_path / "binary.csv")


def notes(tmp_path: Path) -> str:
    (tmp_path / "notes.srt").write_text("meeting notes, not subtitles\n")
    return str(tmp_path / "notes.srt")


CASES = [
    ("lint a file that is not subtitles", lambda t: ["subtitles", "lint", notes(t)], {}, 1, "no cue timings"),
    ("lint a folder", lambda t: ["subtitles", "lint", str(t)], {}, 1, "is a directory"),
    ("fetch --check of json", lambda t: ["fetch", JOB, "--format", "json", "--check"], {}, 1,
     "--check lints subtitles"),
    ("a cue limit out of range", lambda t: ["subtitles", "lint", notes(t)], {"SPOTKIT_CUE_MAX_LINES": "0"}, 1,
     "cue_max_lines"),
    ("fetch into a directory", lambda t: ["fetch", JOB, "-o", str(t)], {}, 1, "is a directory"),
    ("fetch into a missing folder", lambda t: ["fetch", JOB, "-o", str(t / "no" / "x.srt")], {}, 1,
     "does not exist"),
    ("config that is a directory", lambda t: ["status", JOB], {"SPOTKIT_CONFIG": "{tmp}"}, 1, "a directory"),
    ("a boolean typo", lambda t: ["status", JOB], {"SPOTKIT_ACKNOWLEDGE_EVENTS": "ture"}, 1, "not one of"),
    ("a NaN setting", lambda t: ["status", JOB], {"SPOTKIT_SAFETY_MARGIN_SECONDS": "nan"}, 1, "finite"),
    ("simulate on a binary file", lambda t: ["simulate", "--trace", binary(t)], {}, 1, "not a text CSV"),
    ("simulate on NaN values", lambda t: ["simulate", "--trace", nan_trace(t)], {}, 1, "finite"),
    ("simulate --deadline-hours nan", lambda t: ["simulate", "--trace", str(SPARSE), "--deadline-hours", "nan"],
     {}, 2, "not a finite number"),
    ("simulate --evictions-per-hour nan",
     lambda t: ["simulate", "--trace", str(SPARSE), "--evictions-per-hour", "nan"], {}, 2, "not a finite number"),
    ("simulate --evictions-per-hour inf",
     lambda t: ["simulate", "--trace", str(SPARSE), "--evictions-per-hour", "inf"], {}, 2, "not a finite number"),
    ("zero throughput", lambda t: ["breakeven", "--monthly-tokens", "2e8", "--api-price-per-million-tokens", "0.6",
                                   "--gpu-monthly-cost-usd", "45", "--gpu-effective-tokens-per-second", "0"],
     {}, 1, "--gpu-effective-tokens-per-second must be greater than 0"),
    ("an impossible day", lambda t: ["evictions", "list", "--day", "2026-13-45"], {}, 2, "2026-13-45"),
    ("a day that is a path", lambda t: ["evictions", "list", "--day", "../../etc"], {}, 2, "../../etc"),
    ("draining a node nobody knows", lambda t: ["node", "drain", "no-such-node"], {}, 1, "has sent a heartbeat"),
    ("a job id that is not one", lambda t: ["status", "../../etc/passwd"], {}, 1, "is not a job id"),
    ("German for an English-only model", lambda t: ["submit", str(DEMO_SAMPLE), "--language", "de"], {}, 1,
     "English-only"),
    ("a language Whisper does not know", lambda t: ["submit", str(DEMO_SAMPLE), "--language", "xx"], {}, 1,
     "not a language Whisper knows"),
    ("an unknown translation target", lambda t: ["submit", str(DEMO_SAMPLE), "--translate", "zz"], {}, 1,
     "not a language tag"),
    ("fleet status --watch 0", lambda t: ["fleet", "status", "--watch", "0"], {}, 2, "must be more than 0"),
    ("fleet status on Azure without its VMs", lambda t: ["fleet", "status", "--backend", "azure"], {}, 1,
     "the azure backend needs --subscription"),
    ("Azure with no credential", lambda t: ["status", JOB],
     {"SPOTKIT_STORE": "azure-blob://nosuchacct/c", "AZURE_STORAGE_CONNECTION_STRING": ""}, 1,
     "no Azure credential"),
]


@pytest.mark.parametrize("what, args, env, code, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_line(tmp_path: Path, what: str, args, env, code: int, words: str) -> None:  # type: ignore[no-untyped-def]
    env = {k: v.replace("{tmp}", str(tmp_path)) for k, v in env.items()}
    exit_code, output = run(tmp_path, *args(tmp_path), env=env)
    assert exit_code == code, output
    assert words in output, output
    errors = [line for line in output.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1, output
    db = tmp_path / "home" / "queue.db"
    if db.exists():  # nothing was queued
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_a_corrupt_manifest_is_one_line(tmp_path: Path) -> None:
    jobs = tmp_path / "home" / "store" / "jobs"
    jobs.mkdir(parents=True)
    (jobs / f"{JOB}.json").write_text("{")
    for command in (["status", JOB], ["fetch", JOB]):
        exit_code, output = run(tmp_path, *command)
        assert exit_code == 1 and "manifest" in output and "is corrupt" in output, output


def test_store_listing_refuses_a_path_out_of_the_store(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    store.ensure()
    for prefix in ("../../etc", "evictions/day=../../", "/etc"):
        with pytest.raises(StoreError, match="invalid store"):
            store.list(prefix)
    assert store.list("evictions/") == []


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["SPOTKIT_BATCH_SIZE", "SPOTKIT_LEASE_SECONDS", "SPOTKIT_ACKNOWLEDGE_EVENTS",
                                        "SPOTKIT_SAFETY_MARGIN_SECONDS", "SPOTKIT_LANGUAGE", "SPOTKIT_QUEUE",
                                        "SPOTKIT_TRANSCRIBER", "SPOTKIT_IMDS_POLL_SECONDS", "SPOTKIT_MODEL"]),
                       st.text(max_size=20)))
def test_any_environment_is_settings_or_a_config_error(env: dict[str, str]) -> None:
    try:
        load_settings(env={k: v for k, v in env.items() if "\\x00" not in v})
    except ConfigError:
        pass
    except SpotkitError as err:  # every refusal is one of ours
        raise AssertionError(f"not a ConfigError: {err!r}") from err
