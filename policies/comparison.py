"""Run every contender on one trace with the same seed and report, per policy, what `spotkit
simulate --json` prints: ``cost_usd``, ``deadline_miss_rate``, ``gpu_hours``, ``api_usd``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policies.contenders import contenders
from policies.simulator import Result, SimParams, Simulation
from policies.workload import Arrival, Rates, read_trace

# Defaults, each overridable on the command line: a spot T4 (eastus, Nov 2026 snapshot), whisper-1
# and GPT-4o-mini output prices from the price book, and throughput anchors for a T4 (large-v3
# batched ≈ 50× real time; translation tokens/s must be measured — 500 is a placeholder).
DEFAULT_RATES = Rates(audio_rtf=50.0, tokens_per_second=500.0, api_price_per_audio_minute=0.006,
                      api_price_per_million_tokens=0.60)


@dataclass(frozen=True)
class Comparison:
    trace: str
    lower_bound_usd: float
    results: list[Result]

    def result(self, policy: str) -> Result:
        return next(r for r in self.results if r.policy == policy)

    @property
    def spotkit_vs_hindsight(self) -> float:
        return self.result("spotkit").cost_usd / self.result("hindsight_optimal").cost_usd

    @property
    def spotkit_vs_best_baseline(self) -> float:
        baselines = [r.cost_usd for r in self.results if r.policy in ("api_only", "fixed_fleet", "queue_length")]
        return self.result("spotkit").cost_usd / min(baselines)

    def as_dict(self) -> dict[str, Any]:
        return {"trace": self.trace, "lower_bound_usd": round(self.lower_bound_usd, 4),
                "spotkit_vs_hindsight": round(self.spotkit_vs_hindsight, 4),
                "spotkit_vs_best_baseline": round(self.spotkit_vs_best_baseline, 4),
                "policies": {r.policy: r.as_dict() for r in self.results}}


def compare(arrivals: list[Arrival], params: SimParams, trace: str = "") -> Comparison:
    simulation = Simulation(arrivals, params)
    results = [simulation.run(policy) for policy in contenders(arrivals, params)]  # type: ignore[arg-type]
    return Comparison(trace, simulation.lower_bound_usd(), results)


def compare_file(path: Path, params: SimParams) -> Comparison:
    return compare(read_trace(path), params, path.name)
