"""``spotkit simulate``: a month of a fleet under each scaling policy, on a demand trace."""

from __future__ import annotations

import json
from pathlib import Path

import click

from policies.comparison import DEFAULT_RATES, compare_file
from policies.simulator import SimParams
from policies.workload import Rates, TraceError
from runtime.errors import SpotkitError
from spotkit.cli import friendly_errors
from spotkit.cli.params import NON_NEGATIVE, POSITIVE
from spotkit.cli.tables import print_table


@click.command()
@click.option("--trace", "trace", type=click.Path(path_type=Path), required=True,
              help="CSV with header timestamp,audio_seconds,tokens (ISO 8601 UTC).")
@click.option("--max-slots", type=click.IntRange(1, 200), default=8, show_default=True)
@click.option("--spot-price-per-hour", type=POSITIVE, default=0.0627, show_default=True)
@click.option("--boot-seconds", type=NON_NEGATIVE, default=180.0, show_default=True)
@click.option("--evictions-per-hour", type=NON_NEGATIVE, default=0.05, show_default=True, help="Per running slot.")
@click.option("--deadline-hours", type=POSITIVE, default=6.0, show_default=True)
@click.option("--audio-rtf", type=POSITIVE, default=DEFAULT_RATES.audio_rtf, show_default=True,
              help="Audio seconds per GPU second.")
@click.option("--tokens-per-second", type=POSITIVE, default=DEFAULT_RATES.tokens_per_second, show_default=True)
@click.option("--api-price-per-audio-minute", type=NON_NEGATIVE, default=DEFAULT_RATES.api_price_per_audio_minute,
              show_default=True)
@click.option("--api-price-per-million-tokens", type=NON_NEGATIVE, default=DEFAULT_RATES.api_price_per_million_tokens,
              show_default=True)
@click.option("--seed", type=int, default=7, show_default=True, help="Evictions are drawn from it.")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def simulate(trace: Path, max_slots: int, spot_price_per_hour: float, boot_seconds: float,
             evictions_per_hour: float, deadline_hours: float, audio_rtf: float, tokens_per_second: float,
             api_price_per_audio_minute: float, api_price_per_million_tokens: float, seed: int,
             as_json: bool) -> None:
    """Compare spotkit, api_only, fixed_fleet, queue_length and hindsight_optimal on TRACE.

    \b
    Examples:
      spotkit simulate --trace policies/data/traces/diurnal.csv
      spotkit simulate --trace my-month.csv --evictions-per-hour 0.2 --json | jq .policies.spotkit
    """
    for name, value in (("audio-rtf", audio_rtf), ("tokens-per-second", tokens_per_second),
                        ("deadline-hours", deadline_hours), ("spot-price-per-hour", spot_price_per_hour)):
        if value <= 0:
            raise SpotkitError(f"--{name} must be positive, got {value}")
    rates = Rates(audio_rtf, tokens_per_second, api_price_per_audio_minute, api_price_per_million_tokens)
    params = SimParams(rates=rates, spot_price_per_hour=spot_price_per_hour, max_slots=max_slots,
                       boot_seconds=boot_seconds, evictions_per_hour=evictions_per_hour,
                       deadline_seconds=deadline_hours * 3600, seed=seed)
    try:
        comparison = compare_file(trace, params)
    except TraceError as err:
        raise SpotkitError(str(err)) from None
    if as_json:
        click.echo(json.dumps(comparison.as_dict()))
        return
    rows = [(r.policy, f"{r.cost_usd:.2f}", f"{r.gpu_hours:.1f}", f"{r.api_usd:.2f}",
             f"{r.deadline_miss_rate:.2%}", r.evictions) for r in comparison.results]
    print_table(f"{trace.name}: one month, {comparison.results[0].jobs} jobs",
                ("policy", "cost USD", "GPU hours", "API USD", "missed", "evictions"), rows)
    click.echo(f"lower bound (no boots, no idle): ${comparison.lower_bound_usd:.2f}; "
               f"spotkit / hindsight = {comparison.spotkit_vs_hindsight:.3f}; "
               f"spotkit / best baseline = {comparison.spotkit_vs_best_baseline:.3f}")
