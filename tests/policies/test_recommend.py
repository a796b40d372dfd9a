"""The report's recommendation follows its own figures, and month over month compares like with like."""

from __future__ import annotations

import pytest

from policies.power import PaidTime
from policies.prices import VmPrices, load_price_book
from policies.recommend import change, recommend
from policies.report import FixedCosts, ReportInputs, build_report
from runtime.records import UsageRecord, totals_of

NO_FIXED = FixedCosts(0, 0, 0, 0, 0, 0, 0, 0)


def month(paid_hours: float | None, busy_hours: float, spot: float = 0.06, api_hours: float = 0.0,
          name: str = "2026-11") -> dict[str, object]:
    """A month whose fleet transcribed at 50x: *busy_hours* of engine time, *paid_hours* billed."""
    fleet = [UsageRecord("n", "j", "s", "transcribe", 50 * 3600.0, 0, 0, "faster-whisper", "large-v3", 0.0, 1.0,
                         "done", gpu_seconds=3600.0)] * int(busy_hours)
    api = [UsageRecord("api-1", "k", "t", "transcribe", 3600.0, 0, 0, "openai", "whisper-1", 0.0, 1.0, "done",
                       path="api")] * int(api_hours)
    paid = None if paid_hours is None else PaidTime(paid_hours * 3600, "test")
    return build_report(ReportInputs(name, totals_of(fleet + api), [], paid, VmPrices(0.5, spot, "USD", "d", "test"),
                                     load_price_book(), fixed=NO_FIXED))


@pytest.mark.parametrize("report, action, words", [
    (month(None, 2), "measure", "GPU hours are unknown"),
    (month(100, 2, spot=50.0), "move-to-api", "self-hosting lost"),
    (month(10, 9, api_hours=30), "add-slots", "went to the API"),
    (month(10, 5), "remove-slots", "idle GPU time cost"),
    (month(10, 8), "stay", "savings"),
])
def test_each_rule_decides_from_the_figures_it_names(report: dict[str, object], action: str, words: str) -> None:
    advice = recommend(report)
    assert advice["action"] == action and any(words in reason for reason in advice["reasons"]), advice


def test_month_over_month_gives_then_now_and_the_difference() -> None:
    before, now = month(10, 5, name="2026-10"), month(10, 8)
    compared = change(now, before)
    assert compared["previous_month"] == "2026-10"
    figures = compared["figures"]
    assert figures["fleet_audio_seconds"] == {"now": 8 * 50 * 3600.0, "previous": 5 * 50 * 3600.0,
                                              "change": 3 * 50 * 3600.0}
    assert figures["utilization"]["change"] == pytest.approx(0.3)
    unknown = change(month(None, 1), before)["figures"]["total_usd"]
    assert unknown["now"] is None and unknown["change"] is None and unknown["previous"] is not None
