"""The HTML report, rendered by a real browser (Debian's headless chromium): the page parses, the
break-even chart carries the month's own figures, and it draws at all."""

from __future__ import annotations

import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from policies.power import PaidTime
from policies.prices import VmPrices, load_price_book
from policies.report import FixedCosts, ReportInputs, build_report
from policies.report_html import break_even_lines, html_page
from runtime.records import UsageRecord, totals_of

CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--user-data-dir={profile}"]


def a_month(paid_hours: float | None = 40.0) -> dict[str, object]:
    fleet = [UsageRecord("n", "j", "s", "transcribe", 50 * 3600.0, 0, 0, "faster-whisper", "large-v3", 0.0, 1.0,
                         "done", gpu_seconds=3600.0)] * 30
    paid = None if paid_hours is None else PaidTime(paid_hours * 3600, "test")
    return build_report(ReportInputs("2026-11", totals_of(fleet), [], paid, VmPrices(0.526, 0.0627, "USD", "d", "test"),
                                     load_price_book(), fixed=FixedCosts()))


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.costs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.by_id[str(found["id"])] = {"tag": tag, **found}
        if found.get("class") == "cost":
            self.costs.append(found)


def browser(tmp_path: Path, page: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert shutil.which("chromium"), "chromium is installed by `make system-packages`"
    path = tmp_path / "report.html"
    path.write_text(page)
    command = [part.format(profile=tmp_path / "profile") for part in CHROMIUM]
    return subprocess.run([*command, *args, path.as_uri()], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, check=False)


def test_chromium_renders_the_month_on_the_break_even_chart(tmp_path: Path) -> None:
    report = a_month()
    lines = break_even_lines(report)
    assert lines is not None
    dom = browser(tmp_path, html_page(report), "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    parsed = Elements()
    parsed.feed(dom.stdout)
    for element in ("break-even", "api-line", "fleet-line", "this-month", "cost-lines", "figures"):
        assert element in parsed.by_id, element
    marker = parsed.by_id["this-month"]
    assert float(str(marker["data-audio-hours"])) == pytest.approx(30 * 50)
    assert float(str(marker["data-total-usd"])) == report["cost_usd"]["total"]  # type: ignore[index]
    # The month's fixed costs are where the fleet's line starts; the API's starts at zero.
    assert float(str(parsed.by_id["fleet-line"]["y1"])) < float(str(parsed.by_id["api-line"]["y1"]))
    assert {c["data-name"] for c in parsed.costs} >= {"GPU compute", "disks", "engineering tax"}
    expected = lines["fixed_usd"] / (lines["api_usd_per_audio_hour"] - lines["fleet_usd_per_audio_hour"])
    assert f"{expected:,.1f} audio hours a month" in dom.stdout

    # It loads with no console errors, and its screenshot is far from blank: a page with nothing on it,
    # shot the same way in the same run, compresses to a fraction of the report's size.
    shot = browser(tmp_path, html_page(report), "--screenshot", "--window-size=800,1200",
                   "--enable-logging=stderr", "--v=0")
    assert shot.returncode == 0, shot.stderr
    assert "CONSOLE" not in shot.stderr, shot.stderr
    png = (tmp_path / "screenshot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (800, 1200)
    assert browser(tmp_path, "<!doctype html><title>blank</title>", "--screenshot", "--window-size=800,1200",
                   ).returncode == 0
    blank = (tmp_path / "screenshot.png").read_bytes()
    assert len(png) > 5 * len(blank), (len(png), len(blank))


def test_a_month_without_fleet_work_says_why_there_is_no_chart(tmp_path: Path) -> None:
    api_only = build_report(ReportInputs(
        "2026-11", totals_of([UsageRecord("api-1", "k", "t", "transcribe", 600.0, 0, 0, "openai", "whisper-1", 0.0,
                                          1.0, "done", path="api")]), [], None,
        VmPrices(0.526, 0.0627, "USD", "d", "test"), load_price_book()))
    dom = browser(tmp_path, html_page(api_only), "--dump-dom")
    parsed = Elements()
    parsed.feed(dom.stdout)
    assert "no-chart" in parsed.by_id and "break-even" not in parsed.by_id
