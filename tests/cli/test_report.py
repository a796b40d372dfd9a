"""`spotkit report` on a real tiny.en run: the month's work and its API-equivalent, to the cent."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from policies.prices import load_price_book
from runtime.jobs import load_manifest
from runtime.records import usage_prefix
from runtime.store.file_store import FileStore
from spotkit.cli.report_cmd import previous_month
from tests.cli.test_cli import spotkit
from tests.conftest import DEMO_SAMPLE

MONTH = datetime.now(tz=UTC).strftime("%Y-%m")


def report(home: Path, *args: str) -> dict[str, object]:
    out = spotkit(home, "report", "--month", MONTH, "--prices", "snapshot", "--format", "json", *args)
    assert out.returncode == 0, out.stderr
    parsed: dict[str, object] = json.loads(out.stdout)
    return parsed


def test_report_counts_the_work_done_and_prices_it_as_the_api_would(tmp_path: Path) -> None:
    home = tmp_path / "home"
    job = spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "10").stdout.strip()
    assert spotkit(home, "agent", "--until-idle", env={"SPOTKIT_IDLE_SECONDS": "1"}).returncode == 0
    speech = sum(ref.speech_seconds for ref in load_manifest(FileStore(home / "store"), job).segments)
    per_minute = load_price_book().minute_price("whisper-1").per_minute

    first = report(home)
    work = first["work"]
    assert isinstance(work, dict)
    assert work["audio_seconds"] == {"fleet": pytest.approx(speech, abs=1e-3), "api": 0.0}
    assert first["api_equivalent_usd"] == round(speech / 60 * per_minute, 2)
    assert first["paid_node_hours"] is None and "GPU hours are unknown" in str(first["paid_time_source"])
    assert isinstance(first["measured_audio_rtf"], float) and first["measured_audio_rtf"] > 0
    manifest = load_manifest(FileStore(home / "store"), job)
    silence = first["silence_skipped"]
    assert isinstance(silence, dict) and manifest.duration_seconds > manifest.speech_seconds  # the demo pauses
    assert silence["audio_seconds"] == pytest.approx(manifest.duration_seconds - manifest.speech_seconds, abs=1e-3)
    assert silence["api_usd"] == pytest.approx(silence["audio_seconds"] / 60 * per_minute, abs=1e-4)
    assert silence["gpu_seconds"] == pytest.approx(silence["audio_seconds"] / first["measured_audio_rtf"], rel=1e-2)

    # The same file again: answered from the cache — no more audio of work, but cache savings.
    assert spotkit(home, "submit", str(DEMO_SAMPLE), "--segment-max-seconds", "10").returncode == 0
    assert spotkit(home, "agent", "--until-idle", env={"SPOTKIT_IDLE_SECONDS": "1"}).returncode == 0
    second = report(home)
    again = second["work"]
    assert isinstance(again, dict)
    assert again["audio_seconds"] == work["audio_seconds"] and again["cache_hits"] == len(
        load_manifest(FileStore(home / "store"), job).segments)
    assert again["cache_hit_audio_seconds"] == pytest.approx(speech, abs=1e-3)
    assert second["cache_savings_usd"] == pytest.approx(speech / 60 * per_minute, abs=1e-4)
    assert second["api_equivalent_usd"] == first["api_equivalent_usd"]

    text = spotkit(home, "report", "--month", MONTH, "--prices", "snapshot")
    assert text.returncode == 0 and text.stdout.startswith(f"# spotkit report, {MONTH}")
    assert "| **total** | **unknown** |" in text.stdout and "engineering tax" in text.stdout
    table = spotkit(home, "report", "--month", MONTH, "--prices", "snapshot", "--format", "csv").stdout
    rows = dict(line.split(",", 1) for line in table.strip().splitlines()[1:])
    assert float(rows["api_equivalent_usd"]) == second["api_equivalent_usd"]
    assert float(rows["work.audio_seconds.fleet"]) == pytest.approx(speech, abs=1e-3)
    written = tmp_path / "report.md"
    assert spotkit(home, "report", "--month", MONTH, "--prices", "snapshot", "-o", str(written)).returncode == 0
    assert written.read_text() == text.stdout

    # Compacted into one object per node and a daily rollup: the same figures (docs/reports.md, "Scale").
    today = datetime.now(tz=UTC).strftime("%Y-%m-%d")
    compacted = spotkit(home, "usage", "compact", "--day", today, "--json")
    assert compacted.returncode == 0, compacted.stderr
    [result] = json.loads(compacted.stdout)
    assert result["records"] == 2 * len(manifest.segments) and result["merged_objects"] >= 2
    assert report(home) == second

    # No paid-time record: the advice is to measure; no earlier month: no change to show.
    assert second["recommendation"]["action"] == "measure" and second["change"] is None  # type: ignore[index]
    assert "**Recommendation: measure**" in text.stdout
    # Last month's work (the same records, a month earlier): the report compares the two.
    store = FileStore(home / "store")
    earlier = previous_month(MONTH)
    for key in store.list(usage_prefix()):
        day = key.split("day=", 1)[1].split("/", 1)[0]
        store.put(key.replace(f"day={day}", f"day={earlier}-01"), store.get(key))
    compared = report(home)["change"]
    assert isinstance(compared, dict) and compared["previous_month"] == earlier
    assert compared["figures"]["fleet_audio_seconds"]["change"] == 0.0
    assert f"| against {earlier} | then | now | change |" in spotkit(home, "report", "--month", MONTH, "--prices",
                                                                   "snapshot").stdout


@pytest.mark.parametrize("args, words", [
    (["--month", "2026-13"], "give a month as YYYY-MM"),
    (["--month", "1999-01"], "no usage records for 1999-01"),
    (["--ops-hours", "nan"], "nan"),
])
def test_bad_report_input_is_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    out = spotkit(tmp_path / "home", "report", "--prices", "snapshot", *args)
    assert out.returncode != 0 and words in out.stderr and "Traceback" not in out.stderr
    assert len([line for line in out.stderr.splitlines() if line.lower().startswith("error")]) == 1


@pytest.mark.parametrize("args, words", [
    ([], "give exactly one of --day"),
    (["--day", "2026-11-31"], "give a day as YYYY-MM-DD"),
    (["--month", "11-2026"], "give a month as YYYY-MM"),
])
def test_bad_compact_input_is_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    out = spotkit(tmp_path / "home", "usage", "compact", *args)
    assert out.returncode != 0 and words in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("month, before", [("2026-01", "2025-12"), ("2026-12", "2026-11"), ("2026-10", "2026-09")])
def test_the_month_before(month: str, before: str) -> None:
    assert previous_month(month) == before


def test_the_bill_is_read_from_a_gzip_export_and_bad_bills_are_one_line(tmp_path: Path) -> None:
    """The CLI end of reconciliation: a month of records in the store (as agents write them), a gzip
    FocusCost export beside it; and every kind of bad bill refused in one line."""
    import csv
    import gzip

    from runtime.records import UsageRecord, dump, usage_key
    from tests.policies.test_focus import BILL, COLUMNS

    home = tmp_path / "home"
    store = FileStore(home / "store")
    record = UsageRecord("slot-1", "j" * 24, "s", "transcribe", 3600.0, 0, 0, "faster-whisper", "large-v3",
                         time.time(), time.time() + 72, "done", gpu_seconds=72.0)
    store.put(usage_key(time.strftime("%Y-%m-%d", time.gmtime()), "slot-1", 1, "x"), dump(record) + b"\n")
    this_month = [dict(r, ChargePeriodStart=r["ChargePeriodStart"].replace("2026-11", MONTH),
                       ChargePeriodEnd=r["ChargePeriodEnd"].replace("2026-11", MONTH)) for r in BILL]
    export = tmp_path / "focus.csv.gz"
    with gzip.open(export, "wt", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(this_month)
    checked = report(home, "--bill", str(export), "--resource-group", "spotkit-prod", "--slot-vms", "slot-1,slot-2")
    reconciliation = checked["reconciliation"]
    assert isinstance(reconciliation, dict) and reconciliation["rows"]["other_environments"] == 1
    assert reconciliation["credits_and_adjustments_usd"] == {"Credit": -10.0}
    assert {line["line"] for line in reconciliation["lines"]} >= {"GPU compute", "disks", "NAT gateway"}

    broken = tmp_path / "broken.csv"
    broken.write_text("Cost,Date\n1,2026-11-01\n")
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    for args, words in ((["--bill", str(export)], "--bill needs --resource-group"),
                        (["--bill", str(broken), "--resource-group", "g"], "lacks the column(s) BilledCost"),
                        (["--bill", str(tmp_path / "x.parquet"), "--resource-group", "g"], "not a readable Parquet")):
        out = spotkit(home, "report", "--prices", "snapshot", *args)
        assert out.returncode != 0 and words in out.stderr and "Traceback" not in out.stderr, out.stderr
