"""The chaos suite: ≥300 segments, ≥10 Preempts with notice (some shorter than the batch in
flight), ≥3 kill -9, a queue-backend restart — on the embedded backend and on Azurite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from runtime.config import Settings
from runtime.fleet.chaos import (
    ChaosPlan,
    ChaosReport,
    chaos_settings,
    check,
    file_store_outage,
    media_variants,
    run_chaos,
    summary,
)
from runtime.fleet.local_fleet import Fleet
from tests.support.azurite import ACCOUNT, start_azurite


def assert_chaos_held(report: ChaosReport) -> None:
    counts = check(report)
    print(summary(counts))
    assert (counts["lost"], counts["duplicated"], counts["wrongly_poisoned"]) == (0, 0, 0)
    assert counts["unexpected"] == 0
    assert report.done_actions.get("shared", 0) == 2 and report.done_actions.get("resubmit", 0) == 3
    assert counts["segments"] >= 300
    assert report.preempts_sent >= 10 and counts["kills"] >= 3 and report.backend_restarts == 1
    assert counts["acknowledged"] >= 5  # most Preempts drained and were approved before NotBefore
    # Notice shorter than the 1-second batch in flight: that batch is requeued, its time wasted.
    short = [r for r in report.evictions if r["notice_seconds"] < 1.0 and r["wasted_gpu_seconds"] > 0]
    assert short, "no eviction caught a batch it could not finish"


def test_chaos_on_sqlite(tmp_path: Path) -> None:
    settings = chaos_settings(tmp_path / "home")

    def restart_backend(fleet: Fleet) -> None:
        """The embedded queue lives in the agents: kill them all at once; they reopen the file."""
        for name, node in fleet.nodes.items():
            if node.state == "running":
                fleet.kill(name, "kill -9 (queue backend restart: every process holding the SQLite file)")

    plan = ChaosPlan(restart_backend=restart_backend, store_outage=file_store_outage(settings.home / "store"),
                     shared_preempts=2, resubmits=3)
    report = run_chaos(settings, media_variants(tmp_path, 9), plan)
    assert_chaos_held(report)
    assert report.done_actions.get("outage") == 1
    with sqlite3.connect(settings.home / "queue.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_chaos_on_azurite(tmp_path: Path) -> None:
    (tmp_path / "azurite").mkdir()
    azurite = start_azurite(location=tmp_path / "azurite")
    service = {"azurite": azurite}
    env = {"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string}
    settings: Settings = chaos_settings(tmp_path / "home", queue=f"azure-queue://{ACCOUNT}/chaos",
                                        store=f"azure-blob://{ACCOUNT}/chaos")

    def restart_backend(fleet: Fleet) -> None:
        service["azurite"] = service["azurite"].restart()

    try:
        report = run_chaos(settings, media_variants(tmp_path, 9),
                           ChaosPlan(restart_backend=restart_backend, shared_preempts=2, resubmits=3), env=env)
    finally:
        service["azurite"].stop()
    assert_chaos_held(report)
