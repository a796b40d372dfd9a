"""``spotkit breakeven``: is a spot GPU cheaper than a metered API at this volume? (logic: policies/)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from policies.breakeven import (
    BreakEven,
    adjusted_throughput,
    break_even,
    engineering_tax_usd,
    gpus_needed,
    self_host_monthly_cost,
)
from policies.prices import load_price_book, load_vm_prices
from runtime.errors import SpotkitError
from spotkit.cli import friendly_errors

HOURS_PER_MONTH = 720.0  # 30 days always on: the default for --running-hours-per-month
# policies/ names its arguments; a user typed flags. Only names whose flag differs need an entry.
_FLAG_FOR = {"peak_per_second": "gpu_effective_tokens_per_second", "ops_hourly_rate_usd": "ops_hourly_rate",
             "disk_monthly_usd_per_node": "disk_monthly_usd"}


def _as_flags(message: str) -> str:
    """``monthly_tokens must be …`` → ``--monthly-tokens must be …``."""
    return re.sub(r"^(\w+)(?= must )", lambda m: "--" + _FLAG_FOR.get(m[1], m[1]).replace("_", "-"), message)


def _amount(value: float) -> str:
    return f"${value:,.2f}"


def _volume(tokens: float) -> str:
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(tokens) >= size:
            return f"{tokens / size:,.2f}{unit}"
    return f"{tokens:,.0f}"


def _gpu_monthly_cost(monthly: float | None, hourly: float | None, vm_size: str | None, region: str,
                      pay_as_you_go: bool, offline: bool, hours: float, disk: float, tax: float) -> tuple[float, str]:
    """The self-host side's monthly USD and a one-line account of where it came from."""
    given = [name for name, value in (("--gpu-monthly-cost-usd", monthly), ("--vm-price-per-hour", hourly),
                                      ("--vm-size", vm_size)) if value is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --gpu-monthly-cost-usd, --vm-price-per-hour or --vm-size"
                               + (f" (got {', '.join(given)})" if given else ""))
    if vm_size is None and (pay_as_you_go or offline):
        raise click.UsageError("--pay-as-you-go and --offline apply to --vm-size")
    if monthly is not None:
        if hours != HOURS_PER_MONTH:
            raise click.UsageError("--running-hours-per-month applies to --vm-price-per-hour and --vm-size")
        total, parts = monthly + disk + tax, [f"{_amount(monthly)} GPU"]
    else:
        label = "GPU"
        if vm_size is not None:
            prices = load_vm_prices(vm_size, region, allow_network=not offline)
            kind = "pay-as-you-go" if pay_as_you_go else "spot"
            hourly = prices.pay_as_you_go_price_per_hour if pay_as_you_go else prices.spot_price_per_hour
            if hourly is None:
                raise SpotkitError(f"no {kind} price for {vm_size} in {region} ({prices.source})")
            label = f"{vm_size} {region} {kind}, {prices.source}"
        cost = self_host_monthly_cost(vm_price_per_hour=hourly or 0.0, running_hours_per_month=hours,
                                      disk_monthly_usd_per_node=disk, engineering_tax_usd=tax)
        total, parts = cost.total_usd, [f"{_amount(cost.compute_usd)} = {hours:g} h × ${cost.vm_price_per_hour:g}/h "
                                        f"({label})"]
    parts += [f"{_amount(disk)} disk"] if disk else []
    parts += [f"{_amount(tax)} operations"] if tax else []
    return total, " + ".join(parts)


def _plot(result: BreakEven, path: Path) -> None:
    """API cost (a line through 0) and self-host cost (flat) against monthly volume, their crossing, and
    one GPU's capacity. matplotlib is imported here so the CLI starts fast without it."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise SpotkitError("--plot needs matplotlib: pip install matplotlib") from None
    volume, crossing, capacity = result.monthly_tokens, result.break_even_tokens, result.monthly_capacity_tokens
    right = 2 * max(volume, crossing) or capacity * 1.15 or 1e6
    capacity_on_chart = capacity <= 5 * right
    if capacity_on_chart:
        right = max(right, capacity * 1.15)
    price = result.api_price_per_million_tokens
    fig = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, right / 1e6], [0, right * price / 1e6], label=f"API (${price:g} per 1M tokens)")
    ax.plot([0, right / 1e6], [result.self_host_monthly_cost_usd] * 2,
            label=f"self-host ({_amount(result.self_host_monthly_cost_usd)}/month)")
    ax.plot([crossing / 1e6], [result.self_host_monthly_cost_usd], "o", color="black",
            label=f"break-even: {_volume(crossing)} tokens/month")
    ax.axvline(volume / 1e6, color="grey", linestyle=":", label=f"your volume: {_volume(volume)} tokens/month")
    if capacity_on_chart:
        ax.axvline(capacity / 1e6, color="red", linestyle="--", label=f"one GPU's capacity: {_volume(capacity)}")
        ax.axvspan(capacity / 1e6, right / 1e6, color="red", alpha=0.08, label="needs more than one GPU")
    else:
        ax.plot([], [], " ", label=f"one GPU's capacity: {_volume(capacity)} (off the chart)")
    ax.set_xlim(0, right / 1e6)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("tokens per month (millions)")
    ax.set_ylabel("USD per month")
    ax.set_title("Metered API vs one self-hosted GPU")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    try:
        fig.savefig(path, format="png")
    except OSError as err:
        raise SpotkitError(f"cannot write the plot to {path}: {err.strerror or err}") from None


def _summary(result: BreakEven, cost_origin: str, throughput_origin: str, price_origin: str) -> list[str]:
    api, own = result.api_monthly_cost_usd, result.self_host_monthly_cost_usd
    winner, loser = (("the API", own - api) if result.cheaper == "api" else ("self-hosting", api - own))
    lines = [
        f"At {_volume(result.monthly_tokens)} tokens/month:",
        f"  API        {_amount(api)}/month  ({price_origin})",
        f"  self-host  {_amount(own)}/month  ({cost_origin})",
        f"{winner[0].upper()}{winner[1:]} is cheaper by {_amount(loser)}/month." if loser else
        "Both cost the same; the API wins the tie (no servers to run).",
        f"Break-even: {_volume(result.break_even_tokens)} tokens/month; self-hosting is cheaper above it.",
        f"One GPU's capacity: {_volume(result.monthly_capacity_tokens)} tokens/month ({throughput_origin}, "
        "30-day month).",
    ]
    if result.break_even_exceeds_single_gpu_capacity:
        lines.append("One GPU cannot reach break-even: even fully used it produces fewer tokens than its cost "
                     "buys from the API.")
    else:
        lines.append("One GPU can reach break-even.")
    if result.monthly_tokens > result.monthly_capacity_tokens:
        need = (f"needs {gpus_needed(result.monthly_tokens, result.monthly_capacity_tokens)} GPUs"
                if result.monthly_capacity_tokens > 0 else "cannot be produced at zero throughput")
        lines.append(f"Warning: this volume is more than one GPU produces; self-hosting it {need}, so the "
                     "comparison above (one GPU) flatters self-hosting.")
    return lines


@click.command()
@click.option("--monthly-tokens", type=float, required=True, help="Tokens per month to produce.")
@click.option("--api-price-per-million-tokens", type=float, help="The API's USD per 1M tokens.")
@click.option("--api-model", help="Take the API price from the price book: this model's output-token price.")
@click.option("--price-overrides", type=click.Path(path_type=Path), help="TOML file replacing price-book entries.")
@click.option("--gpu-monthly-cost-usd", type=float, help="One GPU node's monthly cost, USD.")
@click.option("--vm-price-per-hour", type=float, help="Instead: the GPU's hourly price (× --running-hours-per-month).")
@click.option("--vm-size", help="Instead: look the hourly price up (Azure Retail Prices API, snapshot fallback).")
@click.option("--region", default="eastus", show_default=True, help="Azure region for --vm-size.")
@click.option("--pay-as-you-go", is_flag=True, help="With --vm-size: the pay-as-you-go price instead of spot.")
@click.option("--offline", is_flag=True, help="With --vm-size: use the dated offline snapshot, no network.")
@click.option("--running-hours-per-month", type=float, default=HOURS_PER_MONTH, show_default=True,
              help="Hours the node runs (and is billed) a month.")
@click.option("--disk-monthly-usd", type=float, default=0.0, help="Persistent disk, USD a month.")
@click.option("--ops-hours-per-month", type=float, default=0.0, help="Engineering tax: people-hours a month.")
@click.option("--ops-hourly-rate", type=float, default=0.0, help="Engineering tax: USD per people-hour.")
@click.option("--gpu-effective-tokens-per-second", type=float, required=True,
              help="Tokens/s one GPU sustains (the peak, when --utilization or eviction flags adjust it).")
@click.option("--utilization", type=float, default=1.0, show_default=True,
              help="Busy share of the paid time (0-1).")
@click.option("--evictions-per-hour", type=float, default=0.0, help="Spot evictions per running hour.")
@click.option("--restart-seconds", type=float, default=0.0, help="Paid seconds to get back to work per eviction.")
@click.option("--wasted-seconds-per-eviction", type=float, default=0.0, help="Work redone per eviction, seconds.")
@click.option("--plot", type=click.Path(path_type=Path), help="Also draw both cost lines to this PNG file.")
@click.option("--json", "as_json", is_flag=True, help="Print the core comparison's inputs and outputs as JSON.")
@friendly_errors
def breakeven(monthly_tokens: float, api_price_per_million_tokens: float | None, api_model: str | None,
              price_overrides: Path | None, gpu_monthly_cost_usd: float | None, vm_price_per_hour: float | None,
              vm_size: str | None, region: str, pay_as_you_go: bool, offline: bool, running_hours_per_month: float,
              disk_monthly_usd: float, ops_hours_per_month: float, ops_hourly_rate: float,
              gpu_effective_tokens_per_second: float, utilization: float, evictions_per_hour: float,
              restart_seconds: float, wasted_seconds_per_eviction: float, plot: Path | None, as_json: bool) -> None:
    """Compare a metered API with a self-hosted GPU at a monthly token volume.

    Prints which side is cheaper and by how much, the break-even volume, and whether one GPU can
    produce that much. With --json, the core comparison's fields (full precision; the GPU cost and
    throughput after the optional adjustments). Exit 1 for values the model rejects, 2 for a wrong
    combination of flags. The model is explained in docs/cost-model.md.

    \b
    Examples:
      spotkit breakeven --monthly-tokens 2e8 --api-price-per-million-tokens 0.6 \\
          --gpu-monthly-cost-usd 45.14 --gpu-effective-tokens-per-second 500
      spotkit breakeven --monthly-tokens 2e8 --api-model gpt-4o-mini --vm-size Standard_NC4as_T4_v3 \\
          --offline --gpu-effective-tokens-per-second 500 --utilization 0.6 --plot breakeven.png
      spotkit breakeven ... --ops-hours-per-month 4 --ops-hourly-rate 80 --json | jq .cheaper
    """
    try:
        if (api_price_per_million_tokens is None) == (api_model is None):
            raise click.UsageError("give exactly one of --api-price-per-million-tokens or --api-model")
        if api_model is not None:
            entry = load_price_book(overrides=price_overrides).token_price(api_model)
            price = entry.output_per_million_tokens
            price_origin = f"{api_model} ${price:g} per 1M output tokens, {entry.source}, as of {entry.as_of}"
        else:
            price = api_price_per_million_tokens or 0.0
            price_origin = f"${price:g} per 1M tokens"
        tax = engineering_tax_usd(ops_hours_per_month, ops_hourly_rate)
        if gpu_effective_tokens_per_second == 0:  # no capacity is not a comparison: it would flatter self-hosting
            raise ValueError("gpu_effective_tokens_per_second must be greater than 0 (measure it: "
                             "`spotkit controller once --json` reports it from the fleet's usage records)")
        if disk_monthly_usd < 0:
            raise ValueError(f"disk_monthly_usd_per_node must be at least 0, got {disk_monthly_usd!r}")
        cost, cost_origin = _gpu_monthly_cost(gpu_monthly_cost_usd, vm_price_per_hour, vm_size, region, pay_as_you_go,
                                              offline, running_hours_per_month, disk_monthly_usd, tax)
        throughput = adjusted_throughput(gpu_effective_tokens_per_second, utilization=utilization,
                                         evictions_per_hour=evictions_per_hour, restart_seconds=restart_seconds,
                                         wasted_seconds_per_eviction=wasted_seconds_per_eviction)
        result = break_even(monthly_tokens, price, cost, throughput)
    except ValueError as err:
        raise SpotkitError(_as_flags(str(err))) from None
    if plot is not None:
        _plot(result, plot)
    if as_json:
        click.echo(json.dumps(result.as_dict()))
        return
    adjusted = throughput != gpu_effective_tokens_per_second
    throughput_origin = (f"{gpu_effective_tokens_per_second:g} tokens/s peak, {throughput:.4g} after utilization "
                         "and evictions" if adjusted else f"{throughput:g} tokens/s")
    for line in _summary(result, cost_origin, throughput_origin, price_origin):
        click.echo(line)
    if plot is not None:
        click.echo(f"Plot written to {plot}.")
