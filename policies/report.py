"""The monthly report: what the fleet cost, what it did, what the same work would have cost on the
metered API, and where the break-even stands. Pure: the records and prices are read by the caller
(`spotkit.cli.report_cmd`); every figure says where it comes from (docs/reports.md).

Fixed costs are in, because an estimate that leaves out the disks of idle slots, the controller and
jump hosts, the NAT gateway and the **engineering tax** (the hours people spend running the fleet)
flatters self-hosting. GPU hours come from the slots' power history (`policies.power`: allocation to
deallocation or eviction, as the controller and the watcher recorded it), or the controller's audit
log for a month before that history existed; a fleet run with neither has no paid-time record, and
the report says so instead of counting its GPUs as free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from policies.breakeven import break_even_utilization, engineering_tax_usd
from policies.budget import api_spend
from policies.power import PaidTime
from policies.prices import PriceBook, PriceBookError, VmPrices
from runtime.records import EvictionRecord, UsageTotal

HOURS_PER_MONTH = 730.0


@dataclass(frozen=True)
class FixedCosts:
    """Monthly costs the fleet pays whether or not it works (docs/deploy.md, "What it costs idle")."""

    disk_usd_per_slot: float = 38.0  # a 256 GB Premium SSD (P15)
    slots: int = 2
    controller_usd: float = 30.0
    jump_host_usd: float = 12.0
    nat_usd: float = 33.0
    storage_usd: float = 1.0
    ops_hours: float = 4.0  # the engineering tax: operations, scaling, failures, model updates
    ops_hourly_rate_usd: float = 100.0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} = {value!r} must be a finite number, 0 or more")

    def lines(self) -> dict[str, float]:
        return {"disks": self.disk_usd_per_slot * self.slots, "controller host": self.controller_usd,
                "jump host": self.jump_host_usd, "NAT gateway": self.nat_usd, "storage": self.storage_usd,
                "engineering tax": engineering_tax_usd(self.ops_hours, self.ops_hourly_rate_usd)}


@dataclass(frozen=True)
class ReportInputs:
    month: str
    usage: list[UsageTotal]  # the month's usage summed (`runtime.records.read_usage_totals`)
    evictions: list[EvictionRecord]
    paid: PaidTime | None  # None: nothing recorded when slots ran this month
    prices: VmPrices
    book: PriceBook
    api_model: str = "whisper-1"
    fixed: FixedCosts = field(default_factory=FixedCosts)
    # Each job's (media seconds, speech seconds) from its manifest: what the segmenter left out.
    media: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # The spot price per hour of the other VM sizes the slots ran at (a stack's fallback sizes); a size
    # missing here is priced at the primary size's price, and the report says so.
    size_prices: Mapping[str, float] = field(default_factory=dict)


def slot_rates(paid: PaidTime, primary: float, size_prices: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """What each slot's hours cost: the spot price of its own VM size where the price source has it,
    else the primary size's (a lower bound for a larger fallback size, said in ``source``)."""
    rates = {}
    for slot in sorted(paid.by_slot):
        size = paid.size_of.get(slot, "")
        if size in size_prices:
            rates[slot] = {"size": size, "price_per_hour": size_prices[size], "source": "its own size"}
        else:
            rates[slot] = {"size": size, "price_per_hour": primary,
                           "source": "the primary size" + (f" (no price for {size}: a lower bound)" if size else "")}
    return rates


def _work(usage: Iterable[UsageTotal]) -> dict[str, Any]:
    done = {"fleet": 0.0, "api": 0.0}
    segments = {"fleet": 0, "api": 0}
    tokens = {"in": 0, "out": 0}
    jobs: set[str] = set()
    cache_hits, cache_audio = 0, 0.0
    busy = 0.0
    for r in usage:
        if r.outcome == "done":
            jobs.add(r.job)
            busy += r.gpu_seconds if r.path == "fleet" else 0.0
            if r.task == "transcribe":
                done[r.path] = done.get(r.path, 0.0) + r.audio_seconds
                segments[r.path] = segments.get(r.path, 0) + r.records
            tokens["in"] += r.tokens_in
            tokens["out"] += r.tokens_out
        elif r.outcome == "cache-hit" and r.task == "transcribe":
            jobs.add(r.job)
            cache_hits += r.records
            cache_audio += r.audio_seconds
        elif r.outcome == "requeued":
            busy += r.gpu_seconds
    return {"jobs": len(jobs), "segments": segments, "audio_seconds": {k: round(v, 3) for k, v in done.items()},
            "tokens": tokens, "cache_hits": cache_hits, "cache_hit_audio_seconds": round(cache_audio, 3),
            "busy_gpu_seconds": round(busy, 3)}


def silence_skipped_seconds(usage: Iterable[UsageTotal], media: Mapping[str, tuple[float, float]]) -> float:
    """Seconds of silence the segmenter kept from the engines this month. Each job's silence counts
    in proportion to the share of its speech transcribed this month, so a job that spans two months
    is split between them and counted once; jobs without a manifest count nothing."""
    done: dict[str, float] = {}
    for r in usage:
        if r.outcome == "done" and r.task == "transcribe":
            done[r.job] = done.get(r.job, 0.0) + r.audio_seconds
    total = 0.0
    for job, speech_done in done.items():
        if job in media:
            duration, speech = media[job]
            share = 1.0 if speech <= 0 else min(1.0, speech_done / speech)
            total += max(0.0, duration - speech) * share
    return total


def _api_equivalent(usage: Iterable[UsageTotal], per_minute: float, book: PriceBook) -> tuple[float, int]:
    """What every piece of work done this month would have cost on the metered API."""
    return api_spend([replace(r, path="api") for r in usage], per_minute, book)


def build_report(inputs: ReportInputs) -> dict[str, Any]:
    """Every figure of the month, each with its unit in its name."""
    try:
        minute = inputs.book.minute_price(inputs.api_model)
    except PriceBookError as err:
        raise ValueError(str(err)) from None
    spot = inputs.prices.spot_price_per_hour
    if spot is None:
        raise ValueError(f"no spot price for the fleet's size in {inputs.prices.source}")
    work = _work(inputs.usage)
    api_spent, unpriced = api_spend(inputs.usage, minute.per_minute, inputs.book)
    equivalent, unpriced_equivalent = _api_equivalent(inputs.usage, minute.per_minute, inputs.book)
    paid = None if inputs.paid is None else inputs.paid.seconds
    rates = {} if inputs.paid is None else slot_rates(inputs.paid, spot, inputs.size_prices)
    gpu_usd = None if inputs.paid is None else round(
        sum(seconds / 3600 * rates[slot]["price_per_hour"] for slot, seconds in inputs.paid.by_slot.items())
        if inputs.paid.by_slot else inputs.paid.seconds / 3600 * spot, 4)
    fixed = {name: round(value, 2) for name, value in inputs.fixed.lines().items()}
    total = None if gpu_usd is None else round(gpu_usd + sum(fixed.values()) + api_spent, 2)
    busy = work["busy_gpu_seconds"]
    utilization = None if not paid else round(min(1.0, busy / paid), 4)
    idle_usd = None if paid is None else round(max(0.0, paid - busy) / 3600 * spot, 4)
    fleet_audio = work["audio_seconds"]["fleet"]
    rtf = fleet_audio / busy if busy > 0 else None
    spot_evictions = [e for e in inputs.evictions if e.origin == "imds"]
    wasted = sum(e.wasted_gpu_seconds for e in inputs.evictions)
    all_audio_hours = (fleet_audio + work["audio_seconds"]["api"]) / 3600
    silence = silence_skipped_seconds(inputs.usage, inputs.media)
    return {
        "month": inputs.month,
        "work": work,
        "prices": {"spot_price_per_hour": spot, "spot_source": f"{inputs.prices.source}, effective "
                   f"{inputs.prices.effective_date}", "api_price_per_audio_minute": minute.per_minute,
                   "api_source": f"{minute.model}: {minute.source}, as of {minute.as_of}"},
        "cost_usd": {"gpu_compute": gpu_usd, "api": api_spent, "fixed": fixed, "total": total,
                     "unpriced_api_tokens": unpriced},
        "paid_node_hours": None if paid is None else round(paid / 3600, 3),
        "paid_time_source": inputs.paid.source if inputs.paid is not None else
                            "none: no power history or controller decisions this month, so GPU hours are unknown",
        "paid_node_hours_by_slot": {} if inputs.paid is None else
                                   {slot: round(s / 3600, 3) for slot, s in sorted(inputs.paid.by_slot.items())},
        "gpu_price_by_slot": rates,
        "utilization": utilization,
        "idle_cost_usd": idle_usd,
        "measured_audio_rtf": None if rtf is None else round(rtf, 3),
        "cost_per_audio_hour_usd": None if total is None or all_audio_hours == 0 else round(total / all_audio_hours, 4),
        "api_equivalent_usd": round(equivalent, 2),
        "api_equivalent_unpriced_tokens": unpriced_equivalent,
        "savings_usd": None if total is None else round(equivalent - total, 2),
        "cache_savings_usd": round(work["cache_hit_audio_seconds"] / 60 * minute.per_minute, 4),
        "cache_savings_gpu_usd": None if rtf is None else round(work["cache_hit_audio_seconds"] / rtf / 3600 * spot, 4),
        "silence_skipped": _silence(silence, rtf, spot, minute.per_minute),
        "break_even_utilization": None if rtf is None else round(
            break_even_utilization(spot, rtf, minute.per_minute / 60), 4),
        "evictions": {"count": len(inputs.evictions), "spot": len(spot_evictions),
                      "requeued_segments": sum(e.requeued for e in inputs.evictions),
                      "wasted_gpu_seconds": round(wasted, 3), "wasted_usd": round(wasted / 3600 * spot, 4)},
    }


def _silence(seconds: float, rtf: float | None, spot: float, per_minute: float) -> dict[str, float | None]:
    """Silence never sent to a GPU, and what it would have cost: GPU time at the fleet's measured
    real-time factor, and the API's per-minute price had the whole media been sent."""
    gpu = None if rtf is None else seconds / rtf
    return {"audio_seconds": round(seconds, 3), "gpu_seconds": None if gpu is None else round(gpu, 3),
            "gpu_usd": None if gpu is None else round(gpu / 3600 * spot, 4),
            "api_usd": round(seconds / 60 * per_minute, 4)}


def markdown(report: Mapping[str, Any]) -> str:
    """The report for a pull request, a chat or a terminal."""
    def usd(value: float | None) -> str:
        return "unknown" if value is None else f"${value:,.2f}"

    work, cost = report["work"], report["cost_usd"]
    audio = work["audio_seconds"]
    lines = [
        f"# spotkit report, {report['month']}",
        "",
        f"**Work**: {work['jobs']} jobs, {work['segments']['fleet'] + work['segments']['api']} segments; "
        f"{audio['fleet'] / 3600:.2f} audio hours on the fleet, {audio['api'] / 3600:.2f} on the API; "
        f"{work['tokens']['in']:,} tokens in, {work['tokens']['out']:,} out; {work['cache_hits']} cache hits "
        f"({work['cache_hit_audio_seconds'] / 3600:.2f} h not redone, "
        f"{usd(report['cache_savings_usd'])} at API prices, {usd(report['cache_savings_gpu_usd'])} of GPU time); "
        f"{report['silence_skipped']['audio_seconds'] / 3600:.2f} h of silence never sent to an engine "
        f"({usd(report['silence_skipped']['gpu_usd'])} of GPU time, {usd(report['silence_skipped']['api_usd'])} "
        "at API prices).",
        "",
        "| cost | USD |",
        "| --- | ---: |",
        f"| GPU compute ({'unknown' if report['paid_node_hours'] is None else report['paid_node_hours']} "
        f"node-hours) | {usd(cost['gpu_compute'])} |",
        f"| metered API | {usd(cost['api'])} |",
        *(f"| {name} | {usd(value)} |" for name, value in cost["fixed"].items()),
        f"| **total** | **{usd(cost['total'])}** |",
        "",
        f"The same work on the metered API: **{usd(report['api_equivalent_usd'])}**; "
        f"savings {usd(report['savings_usd'])}.",
        f"Utilization {_share(report['utilization'])}, idle GPU cost {usd(report['idle_cost_usd'])}; "
        f"break-even utilization {_share(report['break_even_utilization'])}.",
        f"Evictions: {report['evictions']['count']} ({report['evictions']['spot']} spot), "
        f"{report['evictions']['requeued_segments']} segments requeued, "
        f"{usd(report['evictions']['wasted_usd'])} of GPU time wasted.",
        "",
        f"Prices: spot {report['prices']['spot_price_per_hour']} USD/h ({report['prices']['spot_source']}); "
        f"API {report['prices']['api_price_per_audio_minute']} USD/min ({report['prices']['api_source']}). "
        f"Paid time: {report['paid_time_source']}.",
    ]
    advice = report.get("recommendation")
    if advice:
        action = advice["action"].replace("-", " ")
        lines += ["", f"**Recommendation: {action}** — " + "; ".join(advice["reasons"]) + "."]
    compared = report.get("change")
    if compared:
        lines += ["", f"| against {compared['previous_month']} | then | now | change |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {name} | {_figure(f['previous'])} | {_figure(f['now'])} | {_figure(f['change'], signed=True)} |"
                  for name, f in compared["figures"].items()]
    checked = report.get("reconciliation")
    if checked:
        lines += ["", f"**Checked against the bill** (FocusCost {checked['focus_version']}, "
                      f"{checked['rows']['used']} rows; {checked['rows']['other_environments']} of other "
                      "environments left out):", "",
                  "| line | estimated | billed | difference | why |", "| --- | ---: | ---: | ---: | --- |"]
        lines += [f"| {c['line']} | {usd(c['estimated_usd'])} | {usd(c['billed_usd'])} | "
                  f"{_figure(c['difference_usd'], signed=True)} | {c['explanation']} |" for c in checked["lines"]]
        lines += [f"| **total** | **{usd(checked['estimated_usd'])}** | **{usd(checked['billed_usd'])}** | "
                  f"**{_figure(checked['difference_usd'], signed=True)}** | |", ""]
        apart = ", ".join(f"{name} {usd(value)}" for name, value in checked["credits_and_adjustments_usd"].items())
        lines.append(f"Shown apart: {apart or 'no credits or adjustments'}; corrections of earlier periods "
                     f"{usd(checked['corrections_usd'])} (in their lines). Not on the Azure bill: "
                     + ", ".join(checked["not_on_the_azure_bill"]) + ".")
    return "\n".join(lines) + "\n"


def _figure(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "unknown"
    return f"{value:+,.4g}" if signed else f"{value:,.4g}"


def csv_rows(report: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Every figure as (dotted name, value) for a spreadsheet: one row each, nothing left out."""
    rows: list[tuple[str, str]] = []
    for name, value in report.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            rows += csv_rows(value, f"{key}.")
        else:
            rows.append((key, "" if value is None else str(value)))
    return rows


def _share(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1%}"
