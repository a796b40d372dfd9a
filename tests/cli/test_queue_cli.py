"""On call with a growing poison queue: see what was poisoned and why, fix the cause, requeue, done."""

from __future__ import annotations

import json
from pathlib import Path

from runtime.jobs import load_manifest
from runtime.records import audio_key
from runtime.store.file_store import FileStore
from tests.cli.test_cli import spotkit
from tests.conftest import DEMO_SAMPLE

AGENT_ENV = {"SPOTKIT_IDLE_SECONDS": "1", "SPOTKIT_RETRY_SECONDS": "0"}


def test_poisoned_work_is_listed_requeued_and_then_completes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    job = spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "10").stdout.strip()
    store = FileStore(home / "store")
    lost = load_manifest(store, job).segments[1].id
    audio = store.get(audio_key(lost))
    store.delete(audio_key(lost))  # the store lost a segment's audio: its work is poisoned
    assert spotkit(home, "agent", "--until-idle", env=AGENT_ENV).returncode == 0
    status = json.loads(spotkit(home, "status", job, "--json").stdout)
    assert not status["complete"] and len(status["poisoned"]) == 1

    listed = spotkit(home, "queue", "poisoned", "--json")
    [entry] = json.loads(listed.stdout)
    assert entry["segment"] == lost and entry["job"] == job and "missing from the store" in entry["error"]
    table = spotkit(home, "queue", "poisoned")
    assert entry["id"] in table.stdout and "requeue" in table.stdout

    missing = spotkit(home, "queue", "requeue", "no-such-id")
    assert missing.returncode != 0 and "not in the poison queue: no-such-id" in missing.stderr
    assert json.loads(spotkit(home, "queue", "poisoned", "--json").stdout) == [entry]  # untouched

    store.put(audio_key(lost), audio)  # the cause is fixed
    moved = spotkit(home, "queue", "requeue", entry["id"])
    assert moved.returncode == 0 and "requeued 1 message" in moved.stdout
    assert json.loads(spotkit(home, "queue", "poisoned", "--json").stdout) == []
    assert json.loads(spotkit(home, "status", job, "--json").stdout)["poisoned"] == []
    assert spotkit(home, "agent", "--until-idle", env=AGENT_ENV).returncode == 0
    assert json.loads(spotkit(home, "status", job, "--json").stdout)["complete"]
    assert spotkit(home, "queue", "requeue").returncode != 0  # neither ids nor --all: refused


def test_purge_asks_first_and_keeps_the_poison_record(tmp_path: Path) -> None:
    """Purge is the one way work leaves a queue for good: it asks, a "no" keeps everything, and the
    segment's poison record stays so `status` still says what failed and why."""
    home = tmp_path / "home"
    job = spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "10").stdout.strip()
    store = FileStore(home / "store")
    store.delete(audio_key(load_manifest(store, job).segments[0].id))
    assert spotkit(home, "agent", "--until-idle", env=AGENT_ENV).returncode == 0
    [entry] = json.loads(spotkit(home, "queue", "poisoned", "--json").stdout)

    declined = spotkit(home, "queue", "purge", entry["id"], input="n\n")
    assert declined.returncode != 0 and "nothing purged" in declined.stderr
    assert json.loads(spotkit(home, "queue", "poisoned", "--json").stdout) == [entry]
    assert spotkit(home, "queue", "purge").returncode == 2  # neither ids nor --all: a usage error

    gone = spotkit(home, "queue", "purge", "--all", "--yes")
    assert gone.returncode == 0 and "purged 1 message" in gone.stdout
    assert json.loads(spotkit(home, "queue", "poisoned", "--json").stdout) == []
    status = json.loads(spotkit(home, "status", job, "--json").stdout)
    assert not status["complete"] and len(status["poisoned"]) == 1


def test_evictions_list_filters_by_time_and_node_and_shows_dates_and_totals(tmp_path: Path) -> None:
    import time

    from runtime.records import EvictionRecord, dump

    home = tmp_path / "home"
    store = FileStore(home / "store")
    now = time.time()
    for node, event, age in (("slot-1", "e1", 3600.0), ("slot-2", "e2", 7200.0), ("slot-1", "e3", 3 * 86400.0)):
        record = EvictionRecord(node, event, "Preempt", "imds", now - age, now - age + 30, 30.0, now - age,
                                now - age + 2, 2.0, 1, 4, 1.5)
        store.put(record.key(), dump(record))
    recent = json.loads(spotkit(home, "evictions", "list", "--since", "24h", "--json").stdout)
    assert sorted(r["event_id"] for r in recent) == ["e1", "e2"]
    mine = json.loads(spotkit(home, "evictions", "list", "--node", "slot-1", "--json").stdout)
    assert sorted(r["event_id"] for r in mine) == ["e1", "e3"]
    table = spotkit(home, "evictions", "list", "--since", "24h").stdout
    assert time.strftime("%Y-%m-%d", time.gmtime(now - 3600)) in table and "total" in table and "2 events" in table
    bad = spotkit(home, "evictions", "list", "--since", "yesterday")
    assert bad.returncode != 0 and "give a duration like" in bad.stderr
