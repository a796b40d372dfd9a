"""The monthly report's arithmetic: fixed costs in, idle cost, savings against the API, evictions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from policies.power import PaidTime
from policies.prices import VmPrices, load_price_book
from policies.report import FixedCosts, ReportInputs, build_report, markdown, silence_skipped_seconds
from runtime.records import EvictionRecord, UsageRecord, totals_of

PRICES = VmPrices(0.526, 0.06, "USD", "2026-11-01", "test prices")


def done(audio: float, gpu: float, path: str = "fleet", outcome: str = "done") -> UsageRecord:
    return UsageRecord("n", "j", "s", "transcribe", audio, 0, 0, "faster-whisper" if path == "fleet" else "openai",
                       "large-v3", 0.0, 1.0, outcome, gpu_seconds=gpu, path=path)


def test_a_month_with_paid_hours_fixed_costs_and_evictions() -> None:
    usage = [done(3600.0, 72.0)] * 100 + [done(600.0, 0.0, path="api")] + [done(1200.0, 0.0, outcome="cache-hit")]
    eviction = EvictionRecord("n", "e1", "Preempt", "imds", 0.0, 30.0, 30.0, 0.0, 5.0, 5.0, 3, 1, 12.0)
    fixed = FixedCosts(ops_hours=2, ops_hourly_rate_usd=50)
    report = build_report(ReportInputs("2026-11", totals_of(usage), [eviction], PaidTime(10 * 3600.0, "test"), PRICES,
                                       load_price_book(), fixed=fixed))
    cost = report["cost_usd"]
    assert cost["gpu_compute"] == pytest.approx(0.6) and cost["api"] == pytest.approx(0.06)
    assert cost["fixed"]["engineering tax"] == 100.0 and cost["fixed"]["disks"] == 76.0
    assert cost["total"] == pytest.approx(0.6 + 0.06 + 76 + 30 + 12 + 33 + 1 + 100, abs=0.01)
    assert report["utilization"] == pytest.approx(7200 / 36000) and report["measured_audio_rtf"] == 50.0
    assert report["idle_cost_usd"] == pytest.approx(8 * 0.06)
    audio_minutes = (100 * 3600 + 600) / 60
    assert report["api_equivalent_usd"] == round(audio_minutes * 0.006, 2)
    assert report["savings_usd"] == pytest.approx(report["api_equivalent_usd"] - cost["total"], abs=0.01)
    assert report["cache_savings_usd"] == pytest.approx(20 * 0.006)
    assert report["cache_savings_gpu_usd"] == pytest.approx(1200 / 50 / 3600 * 0.06)
    assert report["evictions"]["wasted_usd"] == pytest.approx(12 / 3600 * 0.06)
    assert 0 < report["break_even_utilization"] < 1
    text = markdown(report)
    assert "| **total** |" in text and "savings" in text and "test prices" in text


def test_silence_is_counted_once_across_the_months_a_job_spans() -> None:
    """A 100 s file with 60 s of speech: 40 s of silence, split by the share of its speech done in
    each month; a job with no manifest counts nothing; redone segments never count past the whole."""
    def seg(job: str, audio: float) -> UsageRecord:
        return replace(done(audio, 1.0), job=job)

    media = {"j1": (100.0, 60.0)}
    assert silence_skipped_seconds(totals_of([seg("j1", 15.0)]), media) == pytest.approx(10.0)
    assert silence_skipped_seconds(totals_of([seg("j1", 45.0)]), media) == pytest.approx(30.0)
    assert silence_skipped_seconds(totals_of([seg("j1", 60.0), seg("j1", 30.0), seg("ghost", 9.0)]), media) == 40.0


def test_missing_prices_are_refused() -> None:
    with pytest.raises(ValueError, match="no spot price"):
        build_report(ReportInputs("2026-11", totals_of([done(1.0, 1.0)]), [], None,
                                  VmPrices(0.5, None, "USD", "x", "src"), load_price_book()))
    with pytest.raises(ValueError, match="no per-minute price"):
        build_report(ReportInputs("2026-11", totals_of([done(1.0, 1.0)]), [], None, PRICES, load_price_book(),
                                  api_model="nope"))
    with pytest.raises(ValueError, match="ops_hours"):
        FixedCosts(ops_hours=float("nan"))


def test_slots_of_a_fallback_size_are_priced_at_their_own_size_or_said_to_be_a_lower_bound() -> None:
    paid = PaidTime(30 * 3600.0, "test", {"slot-1": 10 * 3600.0, "slot-2": 10 * 3600.0, "slot-3": 10 * 3600.0},
                    {"slot-1": "Standard_NC4as_T4_v3", "slot-2": "Standard_NC8as_T4_v3",
                     "slot-3": "Standard_NC16as_T4_v3"})
    report = build_report(ReportInputs("2026-11", totals_of([done(3600.0, 72.0)]), [], paid, PRICES,
                                       load_price_book(), size_prices={"Standard_NC8as_T4_v3": 0.12}))
    assert report["cost_usd"]["gpu_compute"] == pytest.approx(10 * 0.06 + 10 * 0.12 + 10 * 0.06)
    rates = report["gpu_price_by_slot"]
    assert rates["slot-2"] == {"size": "Standard_NC8as_T4_v3", "price_per_hour": 0.12, "source": "its own size"}
    assert rates["slot-3"]["price_per_hour"] == 0.06 and "lower bound" in rates["slot-3"]["source"]
