"""``spotkit breakeven``: --json reproduces the formulas to the cent, the summary reads right, --plot draws a
PNG, bad input is one line and exit 1 (a wrong flag combination is a usage error, exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from spotkit.cli.breakeven_cmd import breakeven
from tests.cli.test_cli import spotkit

CORE = ["--monthly-tokens", "2e8", "--api-price-per-million-tokens", "0.6", "--gpu-monthly-cost-usd", "45.144",
        "--gpu-effective-tokens-per-second", "500"]
KEYS = {"monthly_tokens", "api_price_per_million_tokens", "gpu_monthly_cost_usd", "gpu_effective_tokens_per_second",
        "api_monthly_cost_usd", "self_host_monthly_cost_usd", "break_even_tokens", "monthly_capacity_tokens",
        "cheaper", "break_even_exceeds_single_gpu_capacity"}


def run(*args: str) -> Result:
    return CliRunner().invoke(breakeven, list(args))


def as_json(*args: str) -> dict[str, object]:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def cents(value: object) -> int:
    assert isinstance(value, float)
    return round(value * 100)


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 1e12), st.floats(0.01, 50), st.floats(0, 5000), st.floats(0.001, 5000))  # 0 tokens/s is refused
def test_json_reproduces_the_formulas_to_the_cent(tokens: float, price: float, gpu: float, tps: float) -> None:
    data = as_json("--monthly-tokens", repr(tokens), "--api-price-per-million-tokens", repr(price),
                   "--gpu-monthly-cost-usd", repr(gpu), "--gpu-effective-tokens-per-second", repr(tps))
    assert set(data) == KEYS
    api = tokens * price / 1e6
    assert cents(data["api_monthly_cost_usd"]) == round(api * 100)
    assert cents(data["self_host_monthly_cost_usd"]) == round(gpu * 100)
    assert data["break_even_tokens"] == pytest.approx(gpu / (price / 1e6), rel=1e-12, abs=1e-9)
    assert data["monthly_capacity_tokens"] == pytest.approx(tps * 2_592_000, rel=1e-12)
    assert data["cheaper"] == ("api" if api <= gpu else "self-host")
    assert data["break_even_exceeds_single_gpu_capacity"] == (gpu / (price / 1e6) > tps * 2_592_000)
    assert (data["monthly_tokens"], data["api_price_per_million_tokens"], data["gpu_monthly_cost_usd"],
            data["gpu_effective_tokens_per_second"]) == (tokens, price, gpu, tps)


def test_human_summary() -> None:
    result = run(*CORE)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "At 200.00M tokens/month:" in out
    assert "API        $120.00/month" in out and "self-host  $45.14/month" in out
    assert "Self-hosting is cheaper by $74.86/month." in out
    assert "Break-even: 75.24M tokens/month" in out
    assert "One GPU's capacity: 1.30B tokens/month" in out and "One GPU can reach break-even." in out


def test_summary_when_one_gpu_never_pays_and_the_volume_needs_more() -> None:
    out = run("--monthly-tokens", "1e9", "--api-price-per-million-tokens", "0.1", "--gpu-monthly-cost-usd", "400",
              "--gpu-effective-tokens-per-second", "100").stdout
    assert "The API is cheaper by $300.00/month." in out
    assert "One GPU cannot reach break-even" in out
    assert "needs 4 GPUs" in out


def test_adjustments_feed_the_core_inputs(tmp_path: Path) -> None:
    data = as_json("--monthly-tokens", "2e8", "--api-model", "gpt-4o-mini", "--vm-size", "Standard_NC4as_T4_v3",
                   "--offline", "--gpu-effective-tokens-per-second", "500", "--utilization", "0.5",
                   "--evictions-per-hour", "0.1", "--restart-seconds", "180", "--disk-monthly-usd", "5",
                   "--ops-hours-per-month", "2", "--ops-hourly-rate", "50")
    assert data["api_price_per_million_tokens"] == 0.6
    assert data["gpu_monthly_cost_usd"] == pytest.approx(0.0627 * 720 + 5 + 100)
    assert data["gpu_effective_tokens_per_second"] == pytest.approx(500 * 0.5 * (1 - 0.1 * 180 / 3600))
    hourly = as_json("--monthly-tokens", "1", "--api-price-per-million-tokens", "1", "--vm-price-per-hour", "0.526",
                     "--running-hours-per-month", "100", "--gpu-effective-tokens-per-second", "1")
    assert hourly["gpu_monthly_cost_usd"] == pytest.approx(52.6)
    overrides = tmp_path / "prices.toml"
    overrides.write_text('["gpt-4o-mini"]\ninput_per_million_tokens = 0.1\noutput_per_million_tokens = 0.45\n')
    priced = as_json("--monthly-tokens", "1", "--api-model", "gpt-4o-mini", "--price-overrides", str(overrides),
                     "--gpu-monthly-cost-usd", "1", "--gpu-effective-tokens-per-second", "1")
    assert priced["api_price_per_million_tokens"] == 0.45


def test_summary_names_where_prices_come_from() -> None:
    out = run("--monthly-tokens", "2e8", "--api-model", "gpt-4o-mini", "--vm-size", "Standard_NC4as_T4_v3",
              "--offline", "--gpu-effective-tokens-per-second", "500").stdout
    assert "gpt-4o-mini $0.6 per 1M output tokens" in out and "as of 2026-08" in out
    assert "720 h × $0.0627/h (Standard_NC4as_T4_v3 eastus spot, offline snapshot retrieved 2026-11-28" in out


@pytest.mark.parametrize("flag, value, message", [
    ("--monthly-tokens", "-5", "--monthly-tokens must be at least 0"),
    ("--api-price-per-million-tokens", "0", "--api-price-per-million-tokens must be greater than 0"),
    ("--gpu-monthly-cost-usd", "nan", "--gpu-monthly-cost-usd must be a finite number"),
    ("--gpu-effective-tokens-per-second", "-1", "--gpu-effective-tokens-per-second must be at least 0"),
])
def test_invalid_values_one_line_exit_1(flag: str, value: str, message: str) -> None:
    args = list(CORE)
    args[args.index(flag) + 1] = value
    result = run(*args)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"error: {message}, got {float(value)!r}"]


@pytest.mark.parametrize("extra, message", [
    (["--utilization", "1.5"], "error: --utilization must be at most 1"),
    (["--evictions-per-hour", "20", "--restart-seconds", "600"], "error: evictions_per_hour × (restart_seconds"),
    (["--disk-monthly-usd", "-1"], "error: --disk-monthly-usd must be at least 0"),
    (["--ops-hourly-rate", "-1"], "error: --ops-hourly-rate must be at least 0"),
])
def test_invalid_adjustments_one_line_exit_1(extra: list[str], message: str) -> None:
    result = run(*CORE, *extra)
    assert result.exit_code == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(message)


def test_running_hours_cannot_exceed_the_month() -> None:
    result = run(*CORE[:4], *CORE[6:], "--vm-price-per-hour", "1", "--running-hours-per-month", "800")
    assert result.exit_code == 1
    assert result.stderr == "error: --running-hours-per-month must be at most 720, got 800.0\n"


def test_unknown_api_model_lists_the_known_ones() -> None:
    result = run("--api-model", "gpt-9", *CORE[:2], *CORE[4:])
    assert result.exit_code == 1 and "error: no token price for 'gpt-9'" in result.stderr
    assert "gpt-4o-mini" in result.stderr


def test_flag_combinations_are_usage_errors() -> None:
    both = run(*CORE, "--vm-price-per-hour", "0.5")
    assert both.exit_code == 2
    assert "exactly one of --gpu-monthly-cost-usd, --vm-price-per-hour or --vm-size" in both.stderr
    assert run(*CORE[:2], *CORE[4:]).exit_code == 2  # no API price at all
    assert run(*CORE, "--api-model", "gpt-4o-mini").exit_code == 2  # two API prices
    assert run("--monthly-tokens", "lots", *CORE[2:]).exit_code == 2
    assert run(*CORE, "--offline").exit_code == 2  # --offline without --vm-size
    assert run(*CORE, "--running-hours-per-month", "100").exit_code == 2  # hours with a monthly cost
    unknown = run("--monthly-tokens", "1", "--api-price-per-million-tokens", "1", "--vm-size",
                  "Standard_NC8as_T4_v3", "--offline", "--gpu-effective-tokens-per-second", "1")
    assert unknown.exit_code == 1 and "has no price for Standard_NC8as_T4_v3" in unknown.stderr


def test_plot_writes_a_png(tmp_path: Path) -> None:
    target = tmp_path / "breakeven.png"
    result = run(*CORE, "--plot", str(target))
    assert result.exit_code == 0, result.output
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    far = tmp_path / "far.png"  # capacity far beyond the crossing: the capacity line is noted, not drawn
    assert run(*CORE[:-1], "50000", "--plot", str(far), "--json").exit_code == 0
    assert far.read_bytes()[:4] == b"\x89PNG"
    bad = run(*CORE, "--plot", str(tmp_path / "missing-dir" / "x.png"))
    assert bad.exit_code == 1 and bad.stderr.startswith("error: cannot write the plot")


def test_importing_the_command_does_not_import_matplotlib() -> None:
    probe = "import sys, spotkit.cli.breakeven_cmd; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_as_a_real_process(tmp_path: Path) -> None:
    done = spotkit(tmp_path, "breakeven", *CORE, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cheaper"] == "self-host"
    bad = spotkit(tmp_path, "breakeven", *CORE[:-1], "-1")
    assert bad.returncode == 1 and bad.stderr.startswith("error: ")
