"""The operator CLI as a user runs it: real processes, exit codes, one-line errors, JSON output."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA, DEMO_SAMPLE


def spotkit(home: Path, *args: str, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTKIT_")}
    child_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "spotkit", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=300, env=child_env, input=input)


def queued(home: Path) -> int:
    db = home / "queue.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


def test_submit_status_agent_fetch(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sub = spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "10")
    assert sub.returncode == 0, sub.stderr
    job = sub.stdout.strip()
    assert len(job) == 24 and "segments" in sub.stderr

    status = json.loads(spotkit(home, "status", job, "--json").stdout)
    assert status["queued"] == status["segments"] == queued(home) and status["done"] == 0

    early = spotkit(home, "fetch", job)
    assert early.returncode == 3 and "not complete" in early.stderr

    agent = spotkit(home, "agent", "--until-idle", env={"SPOTKIT_IDLE_SECONDS": "0.5"})
    assert agent.returncode == 0, agent.stderr
    said = agent.stderr.splitlines()  # without -v: one concise line per batch, with its real-time factor
    assert said and all(" batch: " in line for line in said), said
    assert "RTF" in said[0] and "s engine" in said[0] and "cache hits" in said[0]
    status = json.loads(spotkit(home, "status", job, "--json").stdout)
    assert status["complete"] and status["done"] == status["segments"]

    srt = spotkit(home, "fetch", job, "--format", "srt")
    assert srt.returncode == 0 and srt.stdout.startswith("1\n00:00:0")
    vtt = spotkit(home, "fetch", job, "--format", "vtt").stdout
    assert vtt.startswith("WEBVTT")
    cues = json.loads(spotkit(home, "fetch", job, "--format", "json").stdout)["cues"]
    assert len(cues) == spotkit(home, "fetch", job, "--format", "srt", "--cue-style", "none").stdout.count(" --> ")
    assert all(cue["words"] for cue in cues)  # word timings, on by default: what readable cues are cut on
    checked = spotkit(home, "fetch", job, "--format", "srt", "--check")
    assert checked.returncode == 0 and checked.stdout == srt.stdout and "0 over the limits" in checked.stderr
    assert "goodbye" in spotkit(home, "fetch", job, "--format", "txt").stdout.lower()

    table = spotkit(home, "status", job)
    assert table.returncode == 0 and "done" in table.stdout


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("definitely not audio\n" * 40), "not a media file"),
    (lambda p: p.write_bytes((DATA / "speech.mp3").read_bytes()[:5000]), "truncated"),
    (lambda p: None, "no such file"),
])
def test_bad_input_one_line_error_nothing_enqueued(tmp_path: Path, make: object, reason: str) -> None:
    path = tmp_path / "input.mp3"
    make(path)  # type: ignore[operator]
    result = spotkit(tmp_path / "home", "submit", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and reason in lines[0]
    assert queued(tmp_path / "home") == 0


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    result = spotkit(tmp_path, "agent", env={"SPOTKIT_BATCH_SIZE": "0"})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "batch_size" in result.stderr and "SPOTKIT_BATCH_SIZE" in result.stderr

    result = spotkit(tmp_path, "status", "x", env={"SPOTKIT_QUEUE": "redis://nope"})
    assert result.returncode == 1 and "unknown scheme 'redis'" in result.stderr


def test_unknown_job(tmp_path: Path) -> None:
    result = spotkit(tmp_path, "status", "feedfacefeedfacefeedface")
    assert result.returncode == 1 and "no job 'feedfacefeedfacefeedface'" in result.stderr


@pytest.mark.parametrize("command", [[], ["submit"], ["status"], ["fetch"], ["agent"], ["demo"], ["fleet"],
                                     ["fleet", "status"]])
def test_help_has_examples(tmp_path: Path, command: list[str]) -> None:
    result = spotkit(tmp_path, *command, "--help")
    assert result.returncode == 0 and "Examples:" in result.stdout


def test_usage_error_exit_code(tmp_path: Path) -> None:
    assert spotkit(tmp_path, "fetch", "j", "--format", "docx").returncode == 2


def test_a_deadline_and_a_priority_travel_with_the_job(tmp_path: Path) -> None:
    """`submit --priority high` is due within the hour, `--deadline 3d` in three days; both show in
    status and in every queued message; a deadline nobody can read is refused before any work."""
    home = tmp_path / "home"
    before = __import__("time").time()
    urgent = spotkit(home, "submit", str(DEMO_SAMPLE), "--priority", "high")
    assert urgent.returncode == 0, urgent.stderr
    status = json.loads(spotkit(home, "status", urgent.stdout.strip(), "--json").stdout)
    assert status["priority"] == "high" and before + 3600 <= status["deadline_at"] <= before + 3700
    assert "(high priority)" in spotkit(home, "status", urgent.stdout.strip()).stdout
    from runtime.queue import open_queue
    from runtime.work import WorkItem

    items = [WorkItem.decode(m.body) for m in open_queue(f"sqlite://{home}/queue.db", env={}).receive(32, 1)]
    assert items and all(i.priority == "high" and i.deadline_at == status["deadline_at"] for i in items)
    later = spotkit(home, "submit", str(DATA / "speech.mp3"), "--deadline", "3d", "--json")
    due = json.loads(spotkit(home, "status", json.loads(later.stdout)["job"], "--json").stdout)["deadline_at"]
    assert before + 3 * 86400 <= due <= before + 3 * 86400 + 100
    depth = queued(home)
    for bad in (["--deadline", "soon"], ["--deadline", "0h"], ["--deadline", "400d"], ["--priority", "urgent"]):
        refused = spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "7", *bad)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert len([line for line in refused.stderr.splitlines() if line.lower().startswith("error")]) == 1
    assert queued(home) == depth  # nothing was queued


def test_the_readme_lists_every_command_and_every_command_has_examples() -> None:
    """Docs that match: each command and subcommand `spotkit --help` offers is in the README's list, and
    its help shows examples (a new command cannot land undocumented)."""
    import click

    from spotkit.cli import main

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing, bare = [], []
    ctx = click.Context(main)
    names = main.list_commands(ctx)
    assert "submit" in names and "report" in names
    for name in names:
        command = main.get_command(ctx, name)
        assert command is not None, name
        if f"spotkit {name}" not in readme:
            missing.append(name)
        groups = command.commands.items() if isinstance(command, click.Group) else []
        for sub, child in [(name, command), *((f"{name} {s}", c) for s, c in groups)]:
            if "Examples:" not in (child.help or "") and not isinstance(child, click.Group):
                bare.append(sub)
    assert missing == [], f"README.md does not list: {missing}"
    assert bare == [], f"no examples in --help: {bare}"


def test_the_agent_says_one_line_per_batch_and_more_with_v(tmp_path: Path) -> None:
    """Without -v a line per batch (segments, audio, engine time, RTF, cache hits); -v adds a line per
    segment and the agent's events. The simulated engine: the lines are the point, not the speech."""
    env = {"SPOTKIT_TRANSCRIBER": "simulated", "SPOTKIT_SIMULATED_SPEED": "500", "SPOTKIT_IDLE_SECONDS": "0.3",
           "SPOTKIT_BATCH_SIZE": "2"}
    home = tmp_path / "home"
    assert spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "5", env=env).returncode == 0
    quiet = spotkit(home, "agent", "--until-idle", env=env).stderr.splitlines()
    assert len(quiet) >= 2 and all(re.fullmatch(r"\d\d:\d\d:\d\d batch: \d+ segments, [\d.]+ s audio, \d+ "
                                                r"transcribed in [\d.]+ s engine, RTF [\d.]+ \([\d.]+x real "
                                                r"time\), 0 cache hits", line) for line in quiet), quiet
    assert spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "5", env=env).returncode == 0
    told = spotkit(home, "-v", "agent", "--until-idle", env=env).stderr
    assert "event=cache-hit" in told and "event=idle-exit" in told
    assert re.search(r"INFO spotkit.progress batch: \d+ segments, .* 0 transcribed in 0.00 s engine, [12] cache hits",
                     told), told


def test_a_command_imports_only_its_own_module() -> None:
    """`spotkit status` starts without the agent's engines, paramiko or the gateway: every test and
    every operator's shell pays the start-up, so the group imports a command's module when it runs."""
    probe = ("import sys, spotkit.cli as c, click; c.main.get_command(click.Context(c.main), 'status'); "
             "print(sorted(m for m in sys.modules if m.startswith('spotkit.cli.') or m in "
             "('paramiko', 'fastapi', 'faster_whisper', 'pyarrow')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['spotkit.cli.jobs_cmd', 'spotkit.cli.params', 'spotkit.cli.tables']"
