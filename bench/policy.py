"""bench/policy: every policy on every shipped trace, and spotkit's cost against the hindsight
oracle and the best baseline measured in the same run.

    python -m bench.policy

Targets: spotkit ≤ 1.10 × hindsight_optimal; never costlier than the best of api_only /
fixed_fleet / queue_length by more than 2 %; deadline misses ≤ 1 %.
"""

from __future__ import annotations

import json

from policies.comparison import DEFAULT_RATES, compare_file
from policies.simulator import SimParams
from policies.traces import TRACES


def main() -> None:
    params = SimParams(rates=DEFAULT_RATES, spot_price_per_hour=0.0627, max_slots=8)
    summary = {}
    for name in ("steady", "diurnal", "sparse"):
        comparison = compare_file(TRACES / f"{name}.csv", params)
        print(f"\n{name}.csv ({comparison.results[0].jobs} jobs); lower bound ${comparison.lower_bound_usd:.2f}")
        print(f"  {'policy':18}{'cost USD':>11}{'GPU h':>9}{'API USD':>10}{'missed':>9}")
        for r in comparison.results:
            print(f"  {r.policy:18}{r.cost_usd:>11.2f}{r.gpu_hours:>9.1f}{r.api_usd:>10.2f}"
                  f"{r.deadline_miss_rate:>9.2%}")
        spotkit = comparison.result("spotkit")
        ok = (comparison.spotkit_vs_hindsight <= 1.10 and comparison.spotkit_vs_best_baseline <= 1.02
              and spotkit.deadline_miss_rate <= 0.01)
        print(f"  spotkit / hindsight_optimal = {comparison.spotkit_vs_hindsight:.3f}   "
              f"spotkit / best baseline = {comparison.spotkit_vs_best_baseline:.3f}   "
              f"targets {'met' if ok else 'MISSED'}")
        summary[name] = {"vs_hindsight": round(comparison.spotkit_vs_hindsight, 4),
                         "vs_best_baseline": round(comparison.spotkit_vs_best_baseline, 4),
                         "miss_rate": spotkit.deadline_miss_rate, "targets_met": ok}
    print(json.dumps({"bench": "policy", **summary}))


if __name__ == "__main__":
    main()
