"""The simulator and the contenders on small synthetic months."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.comparison import DEFAULT_RATES, compare
from policies.contenders import ApiOnly, FixedFleet
from policies.simulator import SimParams, Simulation
from policies.traces import TRACES, diurnal, sparse, steady
from policies.workload import Arrival, TraceError, read_trace, write_trace

START = 1_793_491_200.0  # 2026-11-01T00:00:00Z


def burst(n: int, every: float = 60.0, audio: float = 1800.0) -> list[Arrival]:
    return [Arrival(START + i * every, audio, int(audio * 3.3)) for i in range(n)]


def params(**changes: object) -> SimParams:
    base: dict[str, object] = {"rates": DEFAULT_RATES, "spot_price_per_hour": 0.0627, "max_slots": 4}
    base.update(changes)
    return SimParams(**base)  # type: ignore[arg-type]


def test_api_only_pays_exactly_the_api_price() -> None:
    arrivals = burst(20)
    result = Simulation(arrivals, params()).run(ApiOnly())
    expected = sum(DEFAULT_RATES.api_cost(a) for a in arrivals)
    assert abs(result.cost_usd - expected) < 1e-9 and result.gpu_hours == 0 and result.missed == 0


def test_fixed_fleet_pays_for_every_hour() -> None:
    arrivals = burst(30)
    result = Simulation(arrivals, params(evictions_per_hour=0)).run(FixedFleet(2))
    assert result.gpu_hours >= 2 * (arrivals[-1].at - arrivals[0].at) / 3600
    assert result.api_usd == 0 and result.missed == 0


def test_lower_bound_is_below_every_policy_and_results_repeat() -> None:
    comparison = compare(burst(200, every=120), params())
    assert all(r.cost_usd >= comparison.lower_bound_usd - 1e-9 for r in comparison.results)
    again = compare(burst(200, every=120), params())
    assert [r.as_dict() for r in again.results] == [r.as_dict() for r in comparison.results]


def test_capacity_crunch_routes_to_the_api_instead_of_missing() -> None:
    crunch = burst(400, every=5, audio=3600)  # 400 hours of audio in half an hour, one slot, 1-hour deadline
    comparison = compare(crunch, params(max_slots=1, deadline_seconds=3600))
    spotkit, queue = comparison.result("spotkit"), comparison.result("queue_length")
    assert spotkit.api_usd > 0 and spotkit.deadline_miss_rate <= 0.01
    assert queue.deadline_miss_rate > 0.5  # the KEDA-style scaler has no API to fall back on


def test_targets_on_a_day_of_each_shipped_shape() -> None:
    for make in (steady, diurnal, sparse):
        day = [a for a in make() if a.at < START + 2 * 86400]
        comparison = compare(day, params(max_slots=8))
        spotkit = comparison.result("spotkit")
        assert comparison.spotkit_vs_hindsight <= 1.10, make.__name__
        assert comparison.spotkit_vs_best_baseline <= 1.02, make.__name__
        assert spotkit.deadline_miss_rate <= 0.01


def test_shipped_traces_are_what_the_generator_makes(tmp_path: Path) -> None:
    for name, make in (("steady", steady), ("diurnal", diurnal), ("sparse", sparse)):
        write_trace(tmp_path / f"{name}.csv", make())
        assert (tmp_path / f"{name}.csv").read_bytes() == (TRACES / f"{name}.csv").read_bytes()
        assert len(read_trace(TRACES / f"{name}.csv")) > 1000


def test_simulate_cli_json_and_errors(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    write_trace(trace, burst(50, every=300))
    run = subprocess.run([sys.executable, "-m", "spotkit", "simulate", "--trace", str(trace), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert set(report["policies"]) == {"spotkit", "api_only", "fixed_fleet", "queue_length", "hindsight_optimal"}
    for numbers in report["policies"].values():
        assert {"cost_usd", "deadline_miss_rate", "gpu_hours", "api_usd"} <= set(numbers)
    bad = tmp_path / "bad.csv"
    bad.write_text("time,seconds\n2026-11-01T00:00:00Z,10\n")
    run = subprocess.run([sys.executable, "-m", "spotkit", "simulate", "--trace", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "header must be timestamp,audio_seconds,tokens" in run.stderr
    assert run.stderr.count("\n") == 1


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.lists(st.tuples(
    st.text(max_size=25) | st.sampled_from(["2026-11-01T00:00:00Z", "2026-11-31T00:00:00Z"]),
    st.text(max_size=8) | st.sampled_from(["nan", "inf", "-1", "1e400", "30.5"]),
    st.text(max_size=6) | st.sampled_from(["3", "-3", "1.5"])), max_size=5).map(
    lambda rows: ("timestamp,audio_seconds,tokens\n" + "".join(",".join(r) + "\n" for r in rows)).encode()))
def test_any_trace_file_is_arrivals_or_a_trace_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("trace") / "t.csv"
    path.write_bytes(data)
    try:
        arrivals = read_trace(path)
    except TraceError:
        return
    assert arrivals and all(a.audio_seconds >= 0 and a.tokens >= 0 for a in arrivals)


def test_the_policy_sees_a_bounded_summary_however_large_the_backlog() -> None:
    """A fleet too small for a flood: thousands of jobs wait, yet each tick hands the policy a queue
    summary bounded by the deadline span (one entry per deadline bucket), so a month costs time linear
    in the trace. Before, every queued job was rebuilt into the observation every tick."""
    from policies.comparison import DEFAULT_RATES
    from policies.simulator import SimParams, Simulation, Step
    from policies.traces import flood

    class Watching:
        name = "watching"
        longest = 0

        def step(self, obs, sim):  # type: ignore[no-untyped-def]
            self.longest = max(self.longest, len(obs.queue))
            return Step(1)

    params = SimParams(rates=DEFAULT_RATES, spot_price_per_hour=0.0627, max_slots=1)
    watcher = Watching()
    result = Simulation(flood(), params).run(watcher)
    assert result.missed > 10_000  # the backlog really did grow past its deadlines
    assert watcher.longest <= 30 * 86400 / params.bucket_seconds  # buckets, not jobs
    assert watcher.longest < result.missed / 20
