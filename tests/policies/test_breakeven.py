"""The break-even arithmetic: the core formulas to the cent for any inputs, and each extension."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.breakeven import (
    SECONDS_PER_MONTH,
    BreakEven,
    adjusted_throughput,
    audio_break_even,
    break_even,
    break_even_utilization,
    effective_throughput,
    engineering_tax_usd,
    eviction_lost_fraction,
    gpus_needed,
    mixed_workload,
    self_host_monthly_cost,
    throughput_after_evictions,
)

volumes = st.floats(min_value=0, max_value=1e13, allow_nan=False)
prices = st.floats(min_value=1e-4, max_value=100, allow_nan=False)
costs = st.floats(min_value=0, max_value=1e5, allow_nan=False)
rates = st.floats(min_value=0, max_value=1e5, allow_nan=False)

CORE_FIELDS = ["monthly_tokens", "api_price_per_million_tokens", "gpu_monthly_cost_usd",
               "gpu_effective_tokens_per_second", "api_monthly_cost_usd", "self_host_monthly_cost_usd",
               "break_even_tokens", "monthly_capacity_tokens", "cheaper", "break_even_exceeds_single_gpu_capacity"]


def test_field_names_are_the_contract() -> None:
    assert [f.name for f in fields(BreakEven)] == CORE_FIELDS
    assert list(break_even(1, 1, 1, 1).as_dict()) == CORE_FIELDS


@given(volumes, prices, costs, rates)
def test_core_formulas_to_the_cent(tokens: float, price: float, gpu: float, tps: float) -> None:
    result = break_even(tokens, price, gpu, tps)
    api = tokens * price / 1e6
    assert round(result.api_monthly_cost_usd, 2) == round(api, 2)
    assert round(result.self_host_monthly_cost_usd, 2) == round(gpu, 2)
    assert result.break_even_tokens == pytest.approx(gpu / (price / 1e6), rel=1e-12, abs=1e-9)
    assert result.monthly_capacity_tokens == pytest.approx(tps * 2_592_000, rel=1e-12)
    assert result.cheaper == ("api" if api <= gpu else "self-host")
    assert result.break_even_exceeds_single_gpu_capacity == (gpu / (price / 1e6) > tps * 2_592_000)
    assert (result.monthly_tokens, result.api_price_per_million_tokens, result.gpu_monthly_cost_usd,
            result.gpu_effective_tokens_per_second) == (tokens, price, gpu, tps)


def test_worked_example_spot_t4_against_gpt_4o_mini() -> None:
    result = break_even(200e6, 0.60, 0.0627 * 720, 500)
    assert result.api_monthly_cost_usd == pytest.approx(120.0)
    assert result.self_host_monthly_cost_usd == pytest.approx(45.144)
    assert result.break_even_tokens == pytest.approx(75.24e6)
    assert result.monthly_capacity_tokens == 1_296_000_000
    assert result.cheaper == "self-host" and not result.break_even_exceeds_single_gpu_capacity


def test_tie_goes_to_the_api_and_zero_throughput_means_no_capacity() -> None:
    assert break_even(1e6, 1.0, 1.0, 10).cheaper == "api"
    idle = break_even(1e9, 1.0, 10.0, 0)
    assert idle.monthly_capacity_tokens == 0 and idle.break_even_exceeds_single_gpu_capacity


@pytest.mark.parametrize("index, name", list(enumerate(CORE_FIELDS[:4])))
@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, True, "5"])
def test_invalid_inputs_name_the_argument(index: int, name: str, bad: object) -> None:
    args: list[object] = [1e6, 0.5, 40.0, 100.0]
    args[index] = bad
    with pytest.raises(ValueError, match=name):
        break_even(*args)  # type: ignore[arg-type]


def test_zero_price_is_rejected() -> None:
    with pytest.raises(ValueError, match="api_price_per_million_tokens must be greater than 0"):
        break_even(1e6, 0, 40, 100)


def test_engineering_tax_and_nodes_with_disks() -> None:
    tax = engineering_tax_usd(4, 80)
    assert tax == 320
    cost = self_host_monthly_cost(vm_price_per_hour=0.0627, running_hours_per_month=720, nodes=3,
                                  disk_monthly_usd_per_node=5.0, engineering_tax_usd=tax)
    assert cost.compute_usd == pytest.approx(3 * 0.0627 * 720)
    assert cost.disks_usd == 15 and cost.total_usd == pytest.approx(3 * 0.0627 * 720 + 15 + 320)
    assert cost.as_dict()["nodes"] == 3
    with pytest.raises(ValueError, match="nodes"):
        self_host_monthly_cost(vm_price_per_hour=1, running_hours_per_month=1, nodes=0)
    with pytest.raises(ValueError, match="running_hours_per_month must be at most 720"):
        self_host_monthly_cost(vm_price_per_hour=1, running_hours_per_month=800)
    with pytest.raises(ValueError, match="ops_hourly_rate_usd"):
        engineering_tax_usd(1, -5)


def test_utilization_scales_throughput() -> None:
    assert effective_throughput(500, 0.6) == pytest.approx(300)
    with pytest.raises(ValueError, match="utilization must be at most 1"):
        effective_throughput(500, 1.5)


@given(st.floats(0.01, 10), st.floats(1, 1e4), st.floats(1e-9, 1e-4))
def test_break_even_utilization_equalises_cost_per_unit(hourly: float, tps: float, per_token: float) -> None:
    u = break_even_utilization(hourly, tps, per_token)
    cost_per_token_at_u = (hourly / 3600) / (tps * u)
    assert cost_per_token_at_u == pytest.approx(per_token, rel=1e-9)


def test_break_even_utilization_for_spot_t4_transcription() -> None:
    # 10.5 audio s per GPU s, $0.006 per minute = $0.0001 per audio second, $0.0627/h spot.
    u = break_even_utilization(0.0627, 10.5, 0.006 / 60)
    assert u == pytest.approx((0.0627 / 3600) / (10.5 * 0.0001))
    assert 0.016 < u < 0.017
    with pytest.raises(ValueError, match="throughput_per_second"):
        break_even_utilization(1, 0, 1)


def test_eviction_overhead() -> None:
    lost = eviction_lost_fraction(0.05, 300, 30)
    assert lost == pytest.approx(0.05 * 330 / 3600)
    assert throughput_after_evictions(100, lost) == pytest.approx(100 * (1 - lost))
    assert eviction_lost_fraction(0, 1e6, 1e6) == 0
    with pytest.raises(ValueError, match="exceeds 1"):
        eviction_lost_fraction(10, 360, 60)


def test_adjusted_throughput_composes_utilization_and_evictions() -> None:
    assert adjusted_throughput(500) == 500
    got = adjusted_throughput(500, utilization=0.5, evictions_per_hour=0.1, restart_seconds=180,
                              wasted_seconds_per_eviction=0)
    assert got == pytest.approx(500 * 0.5 * (1 - 0.1 * 180 / 3600))


def test_audio_break_even() -> None:
    result = audio_break_even(100_000, 0.006, 45.144, 10.5)
    assert result.api_monthly_cost_usd == pytest.approx(600)
    assert result.break_even_audio_minutes == pytest.approx(7524)
    assert result.monthly_capacity_audio_minutes == pytest.approx(10.5 * SECONDS_PER_MONTH / 60)
    assert result.cheaper == "self-host" and not result.break_even_exceeds_single_gpu_capacity
    assert audio_break_even(1000, 0.006, 45.144, 10.5).cheaper == "api"
    with pytest.raises(ValueError, match="api_price_per_minute"):
        audio_break_even(1, 0, 1, 1)


@given(volumes, st.floats(1e-4, 1), costs, rates)
def test_audio_is_the_core_comparison_in_audio_seconds(minutes: float, per_minute: float, gpu: float,
                                                       rtf: float) -> None:
    audio = audio_break_even(minutes, per_minute, gpu, rtf)
    seconds = break_even(minutes * 60, per_minute / 60 * 1e6, gpu, rtf)
    assert audio.api_monthly_cost_usd == pytest.approx(seconds.api_monthly_cost_usd, rel=1e-9, abs=1e-9)
    assert audio.break_even_audio_minutes * 60 == pytest.approx(seconds.break_even_tokens, rel=1e-9, abs=1e-9)
    assert audio.monthly_capacity_audio_minutes * 60 == pytest.approx(seconds.monthly_capacity_tokens, rel=1e-9)


def test_mixed_workload_shares_one_gpu() -> None:
    mix = mixed_workload(monthly_audio_minutes=60_000, api_price_per_minute=0.006, monthly_tokens=300e6,
                         api_price_per_million_tokens=0.6, gpu_monthly_cost_usd=45.144, gpu_realtime_factor=10.5,
                         gpu_tokens_per_second=500)
    assert mix.api_transcription_cost_usd == pytest.approx(360)
    assert mix.api_translation_cost_usd == pytest.approx(180)
    assert mix.api_monthly_cost_usd == pytest.approx(540)
    assert mix.gpu_seconds_needed == pytest.approx(60_000 * 60 / 10.5 + 300e6 / 500)
    assert mix.gpu_share_needed == pytest.approx(mix.gpu_seconds_needed / SECONDS_PER_MONTH)
    assert mix.fits_one_gpu and mix.gpus_needed == 1 and mix.cheaper == "self-host"
    assert mix.as_dict()["self_host_monthly_cost_usd"] == pytest.approx(45.144)


def test_mixed_workload_beyond_one_gpu_pays_for_more() -> None:
    mix = mixed_workload(monthly_audio_minutes=0, api_price_per_minute=0.006, monthly_tokens=3e9,
                         api_price_per_million_tokens=0.6, gpu_monthly_cost_usd=45.144, gpu_realtime_factor=0,
                         gpu_tokens_per_second=500)
    assert not mix.fits_one_gpu and mix.gpus_needed == 3
    assert mix.self_host_monthly_cost_usd == pytest.approx(3 * 45.144)
    with pytest.raises(ValueError, match="gpu_realtime_factor is 0 but monthly_audio_minutes"):
        mixed_workload(monthly_audio_minutes=1, api_price_per_minute=0.006, monthly_tokens=0,
                       api_price_per_million_tokens=0.6, gpu_monthly_cost_usd=1, gpu_realtime_factor=0,
                       gpu_tokens_per_second=1)


def test_gpus_needed() -> None:
    assert gpus_needed(0, 0) == 1
    assert gpus_needed(10, 10) == 1 and gpus_needed(11, 10) == 2
    with pytest.raises(ValueError, match="monthly_capacity_per_gpu is 0"):
        gpus_needed(1, 0)
