"""The controller's inputs, each with where it came from: measured from the fleet's own records, read
from the price book, given as a flag, or a stated prior while too little has been measured.

A decision is only as good as its inputs, and an input nobody can trace cannot be checked: every
value here carries its ``source`` (``measured`` / ``price-book`` / ``flag`` / ``prior``) and a
``detail`` a person can verify (how many records over which window; which price list, dated when).
The audit log stores them beside the decision, with the break-even they imply. Pure: the records and
prices are read by the caller (`spotkit.controller.measure`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.breakeven import break_even_utilization
from policies.measured import measure_boots
from policies.prices import MinutePrice, VmPrices
from runtime.errors import ConfigError
from runtime.records import BootRecord, EvictionRecord, UsageTotal

MEASURED, PRICE_BOOK, FLAG, PRIOR = "measured", "price-book", "flag", "prior"
# Engines that are not the GPU fleet: their records say nothing about a node's throughput.
NOT_FLEET_ENGINES = ("openai", "cache", "")

# Stated priors, used until the fleet has measured enough (docs/cost-model.md says where they come from).
PRIORS: dict[str, tuple[float, str]] = {
    "audio_rtf": (50.0, "prior: large-v3 int8_float16 on a T4, batched (docs/cost-model.md); not yet measured"),
    "boot_seconds": (180.0, "prior: allocate + boot + model load from a warm disk; no boot record yet"),
    "evictions_per_hour": (0.05, "prior: ~1 eviction per 20 node-hours; too few paid node-hours measured"),
}


@dataclass(frozen=True)
class Enough:
    """How much must be measured before a measurement replaces its prior."""

    segments: int = 10  # transcribed segments of the fleet's engine and model
    audio_seconds: float = 30.0
    paid_node_hours: float = 10.0  # before an eviction rate means anything
    boots: int = 1


@dataclass(frozen=True)
class Sourced:
    value: float
    source: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source, "detail": self.detail}


@dataclass(frozen=True)
class FleetInputs:
    audio_rtf: Sourced  # audio seconds per engine second
    boot_seconds: Sourced
    evictions_per_hour: Sourced  # per paid node-hour
    spot_price_per_hour: Sourced
    api_price_per_audio_minute: Sourced

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: getattr(self, name).as_dict() for name in self.__dataclass_fields__}

    def break_even(self) -> dict[str, Any]:
        """The busy share of paid GPU time above which self-hosting is cheaper than the API."""
        utilization = break_even_utilization(self.spot_price_per_hour.value, self.audio_rtf.value,
                                             self.api_price_per_audio_minute.value / 60)
        return {"utilization": round(utilization, 4), "self_host_can_win": utilization < 1.0,
                "from": ["spot_price_per_hour", "audio_rtf", "api_price_per_audio_minute"]}


def _override(name: str, flags: Mapping[str, float | None], measured: Sourced) -> Sourced:
    value = flags.get(name)
    if value is None:
        return measured
    return Sourced(float(value), FLAG, f"--{name.replace('_', '-')} {value:g} (instead of {measured.source} "
                                       f"{measured.value:.4g})")


def _prior(name: str) -> Sourced:
    value, why = PRIORS[name]
    return Sourced(value, PRIOR, why)


def fleet_rtf(usage: Iterable[UsageTotal], window: str, enough: Enough) -> Sourced:
    """The fleet's real-time factor from its own ``done`` work (summed usage: `runtime.records.UsageTotal`),
    for the engine and model that did the most audio in the window (a fleet runs one transcription
    model): audio seconds over the engine seconds that produced them (a drained batch's seconds are
    waste, not throughput)."""
    audio: dict[tuple[str, str], float] = {}
    engine_seconds: dict[tuple[str, str], float] = {}
    segments: dict[tuple[str, str], int] = {}
    for t in usage:
        if t.outcome == "done" and t.task == "transcribe" and t.engine not in NOT_FLEET_ENGINES:
            key = (t.engine, t.model)
            audio[key] = audio.get(key, 0.0) + t.audio_seconds
            engine_seconds[key] = engine_seconds.get(key, 0.0) + t.gpu_seconds
            segments[key] = segments.get(key, 0) + t.records
    if not audio:
        return _prior("audio_rtf")
    engine, model = max(audio, key=lambda key: audio[key])
    done, seconds, count = audio[(engine, model)], engine_seconds[(engine, model)], segments[(engine, model)]
    if count < enough.segments or done < enough.audio_seconds or seconds <= 0:
        value, why = PRIORS["audio_rtf"]
        return Sourced(value, PRIOR, f"{why} (only {count} segments, {done:.0f} s of audio "
                                     f"by {engine}/{model} {window}; {enough.segments} segments and "
                                     f"{enough.audio_seconds:.0f} s needed)")
    return Sourced(round(done / seconds, 3), MEASURED,
                   f"{count} segments, {done:.0f} s of audio by {engine}/{model} {window}")


def fleet_boot_seconds(boots: Iterable[BootRecord], enough: Enough) -> Sourced:
    measured = measure_boots([{"boot_seconds": b.boot_seconds,
                               "cache_dir_had_results": b.cache_dir_had_results} for b in boots])
    if measured.warm >= enough.boots and measured.warm_median_seconds is not None:
        return Sourced(measured.warm_median_seconds, MEASURED, f"median of {measured.warm} warm-disk boots")
    if measured.cold >= enough.boots and measured.cold_median_seconds is not None:
        return Sourced(measured.cold_median_seconds, MEASURED,
                       f"median of {measured.cold} cold-disk boots (no warm boot yet: an upper bound)")
    return _prior("boot_seconds")


def fleet_eviction_rate(evictions: Iterable[EvictionRecord], paid_node_seconds: float, window: str,
                        enough: Enough) -> Sourced:
    spot = [e for e in evictions if e.origin == "imds"]
    hours = paid_node_seconds / 3600
    if hours < enough.paid_node_hours:
        value, why = PRIORS["evictions_per_hour"]
        return Sourced(value, PRIOR, f"{why} ({hours:.1f} of {enough.paid_node_hours:g} node-hours {window})")
    return Sourced(round(len(spot) / hours, 5), MEASURED, f"{len(spot)} spot evictions in {hours:.1f} paid "
                                                          f"node-hours {window}")


def spot_price(prices: VmPrices, vm_size: str, region: str) -> Sourced:
    if prices.spot_price_per_hour is None:
        raise ConfigError(f"the price source has no spot price for {vm_size} in {region} ({prices.source}); "
                         "pass --spot-price-per-hour")
    return Sourced(prices.spot_price_per_hour, PRICE_BOOK,
                   f"{vm_size} spot in {region}: {prices.source}, effective {prices.effective_date}")


def size_spot_price(flagged: float | None, primary: Sourced, size: str, found: VmPrices | str, region: str) -> Sourced:
    """The spot price of a fallback *size*: a flag prices every size; the price source's own price for
    the size when it has one (*found*); else the primary size's price, said to be a lower bound — a
    fallback size is at least as large, so starting it never looks cheaper than it is by more than that.
    *found* is the size's prices, or why the price source has none."""
    if flagged is not None:
        return _flag_price(flagged)
    if isinstance(found, VmPrices) and found.spot_price_per_hour is not None:
        return spot_price(found, size, region)
    why = found if isinstance(found, str) else f"{found.source} lists no spot price"
    return Sourced(primary.value, primary.source,
                   f"no spot price for {size} in {region} ({why}); priced as the primary size, a lower bound: "
                   f"{primary.detail}")


def _flag_price(value: float) -> Sourced:
    return Sourced(float(value), FLAG, f"--spot-price-per-hour {value:g}")


def api_minute_price(price: MinutePrice) -> Sourced:
    return Sourced(price.per_minute, PRICE_BOOK, f"{price.model}: {price.source}, as of {price.as_of}")


def resolve_inputs(*, usage: Iterable[UsageTotal], evictions: Iterable[EvictionRecord],
                   boots: Iterable[BootRecord], paid_node_seconds: float, prices: VmPrices, api_price: MinutePrice,
                   vm_size: str, region: str, window: str, flags: Mapping[str, float | None],
                   enough: Enough | None = None) -> FleetInputs:
    """Every input of a decision: a flag if given, else measured if enough was, else the price book or
    the stated prior. *window* describes the records' span for people (``since 2026-11-25``)."""
    usage, enough = list(usage), enough or Enough()
    flagged_price = flags.get("spot_price_per_hour")
    price = _flag_price(flagged_price) if flagged_price is not None else spot_price(prices, vm_size, region)
    return FleetInputs(
        audio_rtf=_override("audio_rtf", flags, fleet_rtf(usage, window, enough)),
        boot_seconds=_override("boot_seconds", flags, fleet_boot_seconds(boots, enough)),
        evictions_per_hour=_override("evictions_per_hour", flags,
                                     fleet_eviction_rate(evictions, paid_node_seconds, window, enough)),
        spot_price_per_hour=price,
        api_price_per_audio_minute=_override("api_price_per_audio_minute", flags, api_minute_price(api_price)),
    )


def given(*, audio_rtf: float, boot_seconds: float, evictions_per_hour: float, spot_price_per_hour: float,
          api_price_per_audio_minute: float) -> FleetInputs:
    """Inputs stated outright (a rehearsal, a test, a what-if): every one marked as a flag."""
    def flag(name: str, value: float) -> Sourced:
        return Sourced(value, FLAG, f"given: {name} = {value:g}")

    return FleetInputs(flag("audio_rtf", audio_rtf), flag("boot_seconds", boot_seconds),
                       flag("evictions_per_hour", evictions_per_hour), flag("spot_price_per_hour", spot_price_per_hour),
                       flag("api_price_per_audio_minute", api_price_per_audio_minute))
