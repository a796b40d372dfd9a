"""The controller decides on what the fleet measured: a real tiny.en run's usage records, not a flag's 50."""

from __future__ import annotations

import json
from pathlib import Path

from policies.inputs import FLAG, MEASURED, PRIOR, Enough, fleet_eviction_rate, fleet_rtf, resolve_inputs
from policies.power import audit_seconds
from policies.prices import load_price_book, snapshot_vm_prices
from runtime.config import load_settings
from runtime.fleet.local_fleet import Fleet
from runtime.fleet.supervisor import state_path
from runtime.records import AuditRecord, UsageRecord, read_usage, totals_of
from runtime.store.file_store import FileStore
from tests.cli.test_cli import spotkit
from tests.conftest import DEMO_SAMPLE


def test_controller_once_reports_the_measured_rtf_and_the_dated_price(tmp_path: Path) -> None:
    home = tmp_path / "home"
    job = spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "3")
    assert job.returncode == 0, job.stderr
    assert spotkit(home, "agent", "--until-idle", env={"SPOTKIT_IDLE_SECONDS": "1"}).returncode == 0
    records = [r for r in read_usage(FileStore(home / "store")) if r.outcome == "done"]
    assert len(records) >= 10 and {r.engine for r in records} == {"faster-whisper"}
    expected = sum(r.audio_seconds for r in records) / sum(r.gpu_seconds for r in records)

    settings = load_settings(env={}, home=home, transcriber="simulated")
    fleet = Fleet(settings, ["local-1"]).up()
    state_path(home).write_text(json.dumps({"pid": 0, "url": fleet.server.url, "nodes": list(fleet.nodes)}))
    try:
        out = spotkit(home, "controller", "once", "--backend", "local", "--prices", "snapshot", "--json")
        text = spotkit(home, "controller", "once", "--backend", "local", "--prices", "snapshot",
                       "--boot-seconds", "90")
    finally:
        fleet.down()
    assert out.returncode == 0, out.stderr
    inputs = json.loads(out.stdout)["inputs"]
    rtf = inputs["audio_rtf"]
    assert rtf["source"] == MEASURED and abs(rtf["value"] - expected) / expected < 0.01 and rtf["value"] != 50
    assert f"{len(records)} segments" in rtf["detail"] and "faster-whisper/tiny.en" in rtf["detail"]
    price = inputs["spot_price_per_hour"]
    snapshot = snapshot_vm_prices("Standard_NC4as_T4_v3", "eastus", reason="network not used")
    assert price["source"] == "price-book" and price["value"] == snapshot.spot_price_per_hour
    assert snapshot.effective_date in price["detail"]
    assert inputs["boot_seconds"]["source"] in (MEASURED, PRIOR)  # the agent's boot record, if it wrote one
    assert json.loads(out.stdout)["break_even"]["from"] == ["spot_price_per_hour", "audio_rtf",
                                                            "api_price_per_audio_minute"]
    assert text.returncode == 0 and "boot_seconds" in text.stdout and "flag" in text.stdout
    assert "--boot-seconds 90" in text.stdout and "break-even utilization" in text.stdout

    shown = spotkit(home, "controller", "history")
    assert shown.returncode == 0 and f"{rtf['value']:.4g} m" in shown.stdout and "m = measured" in shown.stdout
    lines = [json.loads(line) for line in spotkit(home, "controller", "history", "--json").stdout.splitlines()]
    assert len(lines) == 2 and lines[0]["inputs"]["audio_rtf"]["source"] == MEASURED
    assert lines[1]["inputs"]["boot_seconds"]["source"] == FLAG
    empty = spotkit(home, "controller", "history", "--day", "2020-01-01")
    assert empty.returncode == 0 and "no controller decisions on 2020-01-01" in empty.stdout


def record(engine: str, model: str, audio: float, gpu: float, outcome: str = "done") -> UsageRecord:
    return UsageRecord("n", "j", "s", "transcribe", audio, 0, 0, engine, model, 0.0, 1.0, outcome, gpu_seconds=gpu)


def test_too_little_measured_keeps_the_prior_and_says_how_much_is_missing() -> None:
    few = [record("faster-whisper", "large-v3", 5.0, 0.1)] * 3
    rtf = fleet_rtf(totals_of(few), "in the last 7 days", Enough())
    assert rtf.source == PRIOR and rtf.value == 50.0 and "only 3 segments" in rtf.detail


def test_the_fleet_engine_with_the_most_audio_is_measured_and_api_work_is_not() -> None:
    usage = ([record("faster-whisper", "large-v3", 20.0, 0.5)] * 12 + [record("openai", "whisper-1", 900.0, 1.0)] * 5
             + [record("faster-whisper", "tiny.en", 5.0, 0.5)] * 12)
    rtf = fleet_rtf(totals_of(usage), "w", Enough())
    assert rtf.source == MEASURED and rtf.value == 40.0 and "large-v3" in rtf.detail


def test_eviction_rate_needs_paid_hours_from_the_audit_log() -> None:
    audit = [AuditRecord(at, {"running": ["a", "b"]}, 2, "self-host", "") for at in (0.0, 600.0, 1200.0)]
    assert audit_seconds(audit, now=1800.0) == 2 * 1800 and audit_seconds([], now=5.0) == 0
    gap = [AuditRecord(0.0, {"running": ["a"]}, 1, "self-host", ""), AuditRecord(86400.0, {"running": []}, 0,
                                                                                  "self-host", "")]
    assert audit_seconds(gap, now=86400.0) == 900  # the controller was down: not billed as running
    assert fleet_eviction_rate([], 3600, "w", Enough()).source == PRIOR


def test_a_flag_overrides_and_says_what_it_replaced() -> None:
    inputs = resolve_inputs(usage=[], evictions=[], boots=[], paid_node_seconds=0.0,
                            prices=snapshot_vm_prices("Standard_NC4as_T4_v3", "eastus", reason="test"),
                            api_price=load_price_book().minute_price("whisper-1"), vm_size="Standard_NC4as_T4_v3",
                            region="eastus", window="w", flags={"audio_rtf": 40.0})
    assert inputs.audio_rtf.source == FLAG and "instead of prior 50" in inputs.audio_rtf.detail
    assert inputs.api_price_per_audio_minute.source == "price-book" and "whisper-1" in \
        inputs.api_price_per_audio_minute.detail
    even = inputs.break_even()
    assert 0 < even["utilization"] < 1 and even["self_host_can_win"]
