"""bench/policy: every policy on every shipped trace and on a flood month, spotkit's cost against the
hindsight oracle and the best baseline measured in the same run, and how fast the simulator is.

    python -m bench.policy

Targets: spotkit ≤ 1.10 × hindsight_optimal; never costlier than the best of api_only /
fixed_fleet / queue_length by more than 2 %; deadline misses ≤ 1 %. Speed: the simulator's cost is
linear in the trace, so a flood month (a 2-day flood of 300 jobs/h on an office-hours month, and the
same month on a fleet too small for it, where the backlog grows to thousands of jobs) simulates at no
fewer jobs per second than half the steady month's, measured in the same run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace

from policies.comparison import DEFAULT_RATES, Comparison, compare, compare_file
from policies.simulator import SimParams
from policies.traces import TRACES, flood


def main() -> None:
    params = SimParams(rates=DEFAULT_RATES, spot_price_per_hour=0.0627, max_slots=8)
    summary: dict[str, object] = {}
    speed: dict[str, float] = {}
    surge = flood()
    def shipped(name: str) -> Callable[[], Comparison]:
        return lambda: compare_file(TRACES / f"{name}.csv", params)

    runs: list[tuple[str, Callable[[], Comparison]]] = [(name, shipped(name))
                                                        for name in ("steady", "diurnal", "sparse")]
    runs += [("flood", lambda: compare(surge, params, "flood")),
             ("flood-2-slots", lambda: compare(surge, replace(params, max_slots=2), "flood, 2 slots"))]
    for name, run in runs:
        started = time.perf_counter()
        comparison = run()
        seconds = time.perf_counter() - started
        jobs = comparison.results[0].jobs
        speed[name] = jobs * len(comparison.results) / seconds
        print(f"\n{name} ({jobs} jobs): {len(comparison.results)} policies simulated in {seconds:.1f} s, "
              f"{speed[name]:,.0f} jobs/s; lower bound ${comparison.lower_bound_usd:.2f}")
        if name == "flood-2-slots":  # too small a fleet: a speed test, the cost targets do not apply
            continue
        print(f"{comparison.trace}: lower bound ${comparison.lower_bound_usd:.2f}")
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
    ratio = min(speed["flood"], speed["flood-2-slots"]) / speed["steady"]
    print(f"\nsimulator speed, flood / steady jobs per second = {ratio:.2f} (target ≥ 0.5: linear in the trace)")
    summary["speed"] = {name: round(value) for name, value in speed.items()}
    summary["flood_vs_steady_speed"] = round(ratio, 3)
    print(json.dumps({"bench": "policy", **summary}))


if __name__ == "__main__":
    main()
