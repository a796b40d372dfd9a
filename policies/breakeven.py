"""When does a self-hosted spot GPU beat a metered API? Pure arithmetic, every assumption an argument.

The core comparison (:func:`break_even`) puts one month of API spend next to one month of a GPU and
asks three questions: which side is cheaper at this volume, at what volume they cost the same, and
whether one GPU can even produce that volume. Everything else in this module feeds it better inputs
(a GPU's real monthly cost, its real throughput) or asks the same questions for audio priced per
minute and for a transcription + translation mix sharing one GPU.

Nothing here rounds: callers round when they print. Nothing here reads prices: ``policies.prices``
does, and ``docs/cost-model.md`` derives every formula.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

SECONDS_PER_HOUR = 3600.0
# "A month" in this model is 30 days of wall-clock time (30 × 24 × 3600 s): the definition, not an
# estimate. Azure bills per second of running time; running hours per month are an explicit argument.
SECONDS_PER_MONTH = 2_592_000.0
TOKENS_PER_MILLION = 1e6

Number = float | int


def _check(name: str, value: Number, *, positive: bool = False, at_most: float | None = None) -> float:
    """Reject NaN, infinities, negatives (and zero where ``positive``), naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'greater than 0' if positive else 'at least 0'}, got {value!r}")
    if at_most is not None and value > at_most:
        raise ValueError(f"{name} must be at most {at_most:g}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class BreakEven:
    """One month of metered tokens against one month of a GPU (inputs first, then outputs)."""

    monthly_tokens: float
    api_price_per_million_tokens: float
    gpu_monthly_cost_usd: float
    gpu_effective_tokens_per_second: float
    api_monthly_cost_usd: float
    self_host_monthly_cost_usd: float
    break_even_tokens: float
    monthly_capacity_tokens: float
    cheaper: str
    break_even_exceeds_single_gpu_capacity: bool

    def as_dict(self) -> dict[str, float | str | bool]:
        return asdict(self)


def break_even(monthly_tokens: Number, api_price_per_million_tokens: Number, gpu_monthly_cost_usd: Number,
               gpu_effective_tokens_per_second: Number) -> BreakEven:
    """The core comparison.

    api_monthly_cost_usd       = monthly_tokens × api_price_per_million_tokens / 1e6
    self_host_monthly_cost_usd = gpu_monthly_cost_usd  (paid whether busy or idle)
    break_even_tokens          = gpu_monthly_cost_usd / (api_price_per_million_tokens / 1e6)
    monthly_capacity_tokens    = gpu_effective_tokens_per_second × 2,592,000  (a 30-day month)
    cheaper                    = "api" if api cost <= self-host cost else "self-host"  (ties go to the
                                 API: no servers to run)
    break_even_exceeds_single_gpu_capacity = break_even_tokens > monthly_capacity_tokens: then one
                                 GPU cannot produce enough tokens to ever pay for itself.
    """
    tokens = _check("monthly_tokens", monthly_tokens)
    price = _check("api_price_per_million_tokens", api_price_per_million_tokens, positive=True)
    gpu_cost = _check("gpu_monthly_cost_usd", gpu_monthly_cost_usd)
    throughput = _check("gpu_effective_tokens_per_second", gpu_effective_tokens_per_second)
    api_cost = tokens * price / TOKENS_PER_MILLION
    break_even_tokens = gpu_cost / (price / TOKENS_PER_MILLION)
    capacity = throughput * SECONDS_PER_MONTH
    return BreakEven(
        monthly_tokens=tokens, api_price_per_million_tokens=price, gpu_monthly_cost_usd=gpu_cost,
        gpu_effective_tokens_per_second=throughput, api_monthly_cost_usd=api_cost,
        self_host_monthly_cost_usd=gpu_cost, break_even_tokens=break_even_tokens,
        monthly_capacity_tokens=capacity, cheaper="api" if api_cost <= gpu_cost else "self-host",
        break_even_exceeds_single_gpu_capacity=break_even_tokens > capacity)


def gpus_needed(monthly_volume: Number, monthly_capacity_per_gpu: Number) -> int:
    """max(1, ceil(volume / capacity)): a volume above one GPU's capacity needs more GPUs, and so more
    money than the core comparison's single ``gpu_monthly_cost_usd``. Capacity 0 with work to do raises."""
    volume = _check("monthly_volume", monthly_volume)
    capacity = _check("monthly_capacity_per_gpu", monthly_capacity_per_gpu)
    if volume == 0:
        return 1
    if capacity == 0:
        raise ValueError("monthly_capacity_per_gpu is 0, so no number of GPUs can serve a positive volume")
    return max(1, math.ceil(volume / capacity))


def engineering_tax_usd(ops_hours_per_month: Number, ops_hourly_rate_usd: Number) -> float:
    """Monthly cost of the people who keep a self-hosted fleet running: ops hours × hourly rate.

    An API bill includes its operators; a GPU bill does not. Leaving this out flatters self-hosting,
    so it is added to the self-host side (see :func:`self_host_monthly_cost`).
    """
    return _check("ops_hours_per_month", ops_hours_per_month) * _check("ops_hourly_rate_usd", ops_hourly_rate_usd)


@dataclass(frozen=True)
class SelfHostCost:
    """What N GPU nodes cost a month, split so a report can say where the money goes."""

    nodes: int
    vm_price_per_hour: float
    running_hours_per_month: float
    disk_monthly_usd_per_node: float
    engineering_tax_usd: float
    compute_usd: float
    disks_usd: float
    total_usd: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def self_host_monthly_cost(*, vm_price_per_hour: Number, running_hours_per_month: Number, nodes: int = 1,
                           disk_monthly_usd_per_node: Number = 0.0,
                           engineering_tax_usd: Number = 0.0) -> SelfHostCost:
    """total = N × (vm_price_per_hour × running_hours_per_month) + N × disk_monthly_usd_per_node + tax.

    Disks are billed for the whole month even while a spot VM is deallocated (evictionPolicy
    Deallocate keeps them), so they are not multiplied by running hours. 720 running hours is an
    always-on node in a 30-day month; a scaled-to-zero fleet runs fewer.
    """
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise ValueError(f"nodes must be a whole number of at least 1, got {nodes!r}")
    hourly = _check("vm_price_per_hour", vm_price_per_hour)
    hours = _check("running_hours_per_month", running_hours_per_month, at_most=SECONDS_PER_MONTH / SECONDS_PER_HOUR)
    disk = _check("disk_monthly_usd_per_node", disk_monthly_usd_per_node)
    tax = _check("engineering_tax_usd", engineering_tax_usd)
    compute = nodes * (hourly * hours)
    disks = nodes * disk
    return SelfHostCost(nodes=nodes, vm_price_per_hour=hourly, running_hours_per_month=hours,
                        disk_monthly_usd_per_node=disk, engineering_tax_usd=tax, compute_usd=compute,
                        disks_usd=disks, total_usd=compute + disks + tax)


def effective_throughput(peak_per_second: Number, utilization: Number) -> float:
    """effective = peak × utilization.

    A benchmark measures peak throughput on a full queue; a real GPU idles between bursts, waits
    on I/O and runs part-full batches while still being billed. ``utilization`` (0..1) is the busy
    share of the paid-for time.
    """
    return _check("peak_per_second", peak_per_second) * _check("utilization", utilization, at_most=1.0)


def break_even_utilization(gpu_hourly_cost_usd: Number, throughput_per_second: Number,
                           api_price_per_unit: Number) -> float:
    """u* = (gpu_hourly_cost / 3600) / (throughput_per_second × api_price_per_unit).

    Derivation: in one paid second the GPU costs ``gpu_hourly_cost / 3600`` and, busy a share u of
    the time, produces ``throughput × u`` units (tokens, or audio seconds). Its cost per unit is
    ``(gpu_hourly_cost / 3600) / (throughput × u)``; setting that equal to the API's price per unit
    and solving for u gives u*. Below u* the API is cheaper per unit; u* > 1 means self-hosting
    loses even with the GPU busy every paid second. Units must match: tokens/s with USD per token,
    or audio seconds/s (the real-time factor) with USD per audio second (price per minute / 60).
    """
    hourly = _check("gpu_hourly_cost_usd", gpu_hourly_cost_usd)
    throughput = _check("throughput_per_second", throughput_per_second, positive=True)
    price = _check("api_price_per_unit", api_price_per_unit, positive=True)
    return (hourly / SECONDS_PER_HOUR) / (throughput * price)


def eviction_lost_fraction(evictions_per_hour: Number, restart_seconds: Number,
                           wasted_seconds_per_eviction: Number) -> float:
    """lost = r × (b + w) / 3600: the share of paid GPU time that produces nothing because of evictions.

    Each eviction costs the boot/restart time b (VM started and billed, model loading) plus the
    work in flight that must be redone w (spotkit's drain keeps w near zero with notice; a missed
    notice wastes at most the batch in flight). r is evictions per paid hour (Azure publishes eviction
    rates per hour in buckets: 0-5 %, 5-10 %, ...). A fraction above 1 means the node never works.
    """
    rate = _check("evictions_per_hour", evictions_per_hour)
    lost = rate * (_check("restart_seconds", restart_seconds)
                   + _check("wasted_seconds_per_eviction", wasted_seconds_per_eviction)) / SECONDS_PER_HOUR
    if lost > 1:
        raise ValueError(f"evictions_per_hour × (restart_seconds + wasted_seconds_per_eviction) / 3600 = {lost:.3g}"
                         " exceeds 1: the node would spend all its paid time restarting")
    return lost


def throughput_after_evictions(throughput_per_second: Number, lost_fraction: Number) -> float:
    """effective = throughput × (1 − lost): averaged over paid time, lost seconds produce nothing."""
    return _check("throughput_per_second", throughput_per_second) * (
        1.0 - _check("lost_fraction", lost_fraction, at_most=1.0))


def adjusted_throughput(peak_per_second: Number, *, utilization: Number = 1.0, evictions_per_hour: Number = 0.0,
                        restart_seconds: Number = 0.0, wasted_seconds_per_eviction: Number = 0.0) -> float:
    """effective = peak × utilization × (1 − evictions_per_hour × (restart + wasted) / 3600).

    Idle time and eviction losses are treated as independent shares of the paid time, so they
    multiply. The defaults (busy all the time, never evicted) leave ``peak`` unchanged.
    """
    lost = eviction_lost_fraction(evictions_per_hour, restart_seconds, wasted_seconds_per_eviction)
    return throughput_after_evictions(effective_throughput(peak_per_second, utilization), lost)


@dataclass(frozen=True)
class AudioBreakEven:
    """One month of audio minutes billed by an API against one month of a GPU."""

    monthly_audio_minutes: float
    api_price_per_minute: float
    gpu_monthly_cost_usd: float
    gpu_realtime_factor: float
    api_monthly_cost_usd: float
    self_host_monthly_cost_usd: float
    break_even_audio_minutes: float
    monthly_capacity_audio_minutes: float
    cheaper: str
    break_even_exceeds_single_gpu_capacity: bool

    def as_dict(self) -> dict[str, float | str | bool]:
        return asdict(self)


def audio_break_even(monthly_audio_minutes: Number, api_price_per_minute: Number, gpu_monthly_cost_usd: Number,
                     gpu_realtime_factor: Number) -> AudioBreakEven:
    """The core comparison for transcription, which APIs bill per audio minute.

    api_monthly_cost_usd           = monthly_audio_minutes × api_price_per_minute
    break_even_audio_minutes       = gpu_monthly_cost_usd / api_price_per_minute
    monthly_capacity_audio_minutes = gpu_realtime_factor × 2,592,000 / 60
    ``gpu_realtime_factor`` is audio seconds transcribed per GPU second (10.5 means 10.5× real time),
    already reduced for utilization and evictions if those apply.
    """
    minutes = _check("monthly_audio_minutes", monthly_audio_minutes)
    price = _check("api_price_per_minute", api_price_per_minute, positive=True)
    gpu_cost = _check("gpu_monthly_cost_usd", gpu_monthly_cost_usd)
    rtf = _check("gpu_realtime_factor", gpu_realtime_factor)
    api_cost = minutes * price
    break_even_minutes = gpu_cost / price
    capacity = rtf * SECONDS_PER_MONTH / 60.0
    return AudioBreakEven(
        monthly_audio_minutes=minutes, api_price_per_minute=price, gpu_monthly_cost_usd=gpu_cost,
        gpu_realtime_factor=rtf, api_monthly_cost_usd=api_cost, self_host_monthly_cost_usd=gpu_cost,
        break_even_audio_minutes=break_even_minutes, monthly_capacity_audio_minutes=capacity,
        cheaper="api" if api_cost <= gpu_cost else "self-host",
        break_even_exceeds_single_gpu_capacity=break_even_minutes > capacity)


@dataclass(frozen=True)
class MixedWorkload:
    """Transcription and translation sharing GPUs: the API bills both, the GPU's seconds are shared."""

    monthly_audio_minutes: float
    api_price_per_minute: float
    monthly_tokens: float
    api_price_per_million_tokens: float
    gpu_monthly_cost_usd: float
    gpu_realtime_factor: float
    gpu_tokens_per_second: float
    api_transcription_cost_usd: float
    api_translation_cost_usd: float
    api_monthly_cost_usd: float
    gpu_seconds_needed: float
    gpu_seconds_per_month: float
    gpu_share_needed: float
    fits_one_gpu: bool
    gpus_needed: int
    self_host_monthly_cost_usd: float
    cheaper: str

    def as_dict(self) -> dict[str, float | int | str | bool]:
        return asdict(self)


def _gpu_seconds(volume: float, per_second: float, volume_name: str, rate_name: str) -> float:
    if volume == 0:
        return 0.0
    if per_second == 0:
        raise ValueError(f"{rate_name} is 0 but {volume_name} is positive: that work can never finish")
    return volume / per_second


def mixed_workload(*, monthly_audio_minutes: Number, api_price_per_minute: Number, monthly_tokens: Number,
                   api_price_per_million_tokens: Number, gpu_monthly_cost_usd: Number, gpu_realtime_factor: Number,
                   gpu_tokens_per_second: Number) -> MixedWorkload:
    """Transcription (audio minutes) + translation (tokens) on the same GPU(s).

    api_monthly_cost_usd = minutes × price_per_minute + tokens × price_per_million / 1e6
    gpu_seconds_needed   = audio_seconds / realtime_factor + tokens / tokens_per_second
    gpu_share_needed     = gpu_seconds_needed / 2,592,000;  fits_one_gpu = share <= 1
    gpus_needed          = max(1, ceil(share));  self-host cost = gpus_needed × gpu_monthly_cost_usd
    The two engines take turns on the GPU (one model loaded at a time, or both fitting in memory);
    each second spent on one is a second not spent on the other, hence the sum.
    """
    minutes = _check("monthly_audio_minutes", monthly_audio_minutes)
    per_minute = _check("api_price_per_minute", api_price_per_minute, positive=True)
    tokens = _check("monthly_tokens", monthly_tokens)
    per_million = _check("api_price_per_million_tokens", api_price_per_million_tokens, positive=True)
    gpu_cost = _check("gpu_monthly_cost_usd", gpu_monthly_cost_usd)
    rtf = _check("gpu_realtime_factor", gpu_realtime_factor)
    tps = _check("gpu_tokens_per_second", gpu_tokens_per_second)
    transcription = minutes * per_minute
    translation = tokens * per_million / TOKENS_PER_MILLION
    api_cost = transcription + translation
    needed = (_gpu_seconds(minutes * 60.0, rtf, "monthly_audio_minutes", "gpu_realtime_factor")
              + _gpu_seconds(tokens, tps, "monthly_tokens", "gpu_tokens_per_second"))
    share = needed / SECONDS_PER_MONTH
    gpus = max(1, math.ceil(share))
    self_host = gpus * gpu_cost
    return MixedWorkload(
        monthly_audio_minutes=minutes, api_price_per_minute=per_minute, monthly_tokens=tokens,
        api_price_per_million_tokens=per_million, gpu_monthly_cost_usd=gpu_cost, gpu_realtime_factor=rtf,
        gpu_tokens_per_second=tps, api_transcription_cost_usd=transcription, api_translation_cost_usd=translation,
        api_monthly_cost_usd=api_cost, gpu_seconds_needed=needed, gpu_seconds_per_month=SECONDS_PER_MONTH,
        gpu_share_needed=share, fits_one_gpu=share <= 1, gpus_needed=gpus, self_host_monthly_cost_usd=self_host,
        cheaper="api" if api_cost <= self_host else "self-host")
