"""Measured inputs for the cost policies, from what the fleet wrote: usage records and eviction
records (`runtime.usage`, `runtime.eviction.watcher`). No brochure numbers: throughput is what the
engines did per second of engine time, utilization is busy time over paid time.

Paid (running) time is not in the usage records — a node that idles writes nothing — so it is an
argument: the controller's audit log or the Azure bill provides it. Boot-to-ready time comes from
the agents' boot records (``boots/``): seconds from slot start to a ready engine, split by whether the
node's persistent disk already held a cache (warm) or not (cold).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runtime.records import UsageRecord


@dataclass(frozen=True)
class NodeMeasure:
    node: str
    segments_done: int
    cache_hits: int
    requeued: int
    audio_seconds: float  # transcribed by the engine (cache hits excluded)
    tokens_out: int
    busy_seconds: float  # engine time, including work wasted by evictions
    wasted_seconds: float

    @property
    def audio_rtf(self) -> float:
        """Audio seconds per engine second: the measured real-time factor."""
        useful = self.busy_seconds - self.wasted_seconds
        return self.audio_seconds / useful if useful > 0 else 0.0

    @property
    def tokens_per_second(self) -> float:
        useful = self.busy_seconds - self.wasted_seconds
        return self.tokens_out / useful if useful > 0 else 0.0

    def utilization(self, paid_seconds: float) -> float:
        """Busy over paid time (0 when nothing was paid)."""
        return min(1.0, self.busy_seconds / paid_seconds) if paid_seconds > 0 else 0.0


def measure_nodes(records: Iterable[UsageRecord]) -> dict[str, NodeMeasure]:
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in records:
        t = totals[r.node]
        if r.outcome == "done":
            t["done"] += 1
            t["audio"] += r.audio_seconds
            t["tokens"] += r.tokens_out
            t["busy"] += r.gpu_seconds
        elif r.outcome == "cache-hit":
            t["hits"] += 1
        elif r.outcome == "requeued":
            t["requeued"] += 1
            t["busy"] += r.gpu_seconds
            t["wasted"] += r.gpu_seconds
    return {node: NodeMeasure(node, int(t["done"]), int(t["hits"]), int(t["requeued"]), t["audio"],
                              int(t["tokens"]), t["busy"], t["wasted"]) for node, t in sorted(totals.items())}


@dataclass(frozen=True)
class FleetMeasure:
    audio_rtf: float  # fleet-wide audio seconds per engine second
    busy_seconds: float
    evictions: int
    evictions_per_hour: float  # per paid node-hour
    wasted_seconds_per_eviction: float


def measure_fleet(records: Iterable[UsageRecord], evictions: Iterable[Mapping[str, Any]],
                  paid_node_seconds: float) -> FleetMeasure:
    """Fleet-wide inputs for `policies.scaling.ScalingParams` and `policies.breakeven`."""
    nodes = measure_nodes(records)
    audio = sum(n.audio_seconds for n in nodes.values())
    useful = sum(n.busy_seconds - n.wasted_seconds for n in nodes.values())
    spot = [e for e in evictions if e.get("origin") == "imds"]
    wasted = sum(float(e.get("wasted_gpu_seconds", 0.0)) for e in spot)
    hours = paid_node_seconds / 3600
    return FleetMeasure(audio / useful if useful > 0 else 0.0, sum(n.busy_seconds for n in nodes.values()),
                        len(spot), len(spot) / hours if hours > 0 else 0.0, wasted / len(spot) if spot else 0.0)


@dataclass(frozen=True)
class BootMeasure:
    warm_median_seconds: float | None
    cold_median_seconds: float | None
    warm: int
    cold: int


def measure_boots(boots: Iterable[Mapping[str, Any]]) -> BootMeasure:
    """Median seconds from a slot's start to a ready engine, for warm and cold persistent disks; starts
    that were not boots (``boot_seconds`` -1: agent restarts) are not counted."""
    warm: list[float] = []
    cold: list[float] = []
    for boot in boots:
        seconds = float(boot.get("boot_seconds", -1))
        if seconds >= 0:
            (warm if boot.get("cache_dir_had_results") else cold).append(seconds)
    return BootMeasure(_median(warm), _median(cold), len(warm), len(cold))


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
