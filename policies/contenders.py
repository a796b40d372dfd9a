"""The policies `spotkit simulate` compares, all driven by the same `Simulation`.

* ``spotkit`` — `policies.scaling.decide`, on what a real controller can measure.
* ``api_only`` — everything to the metered API.
* ``fixed_fleet`` — always on, sized for the peak hour of the trace (an upper bound on capacity
  planning done by hand).
* ``queue_length`` — KEDA-style: replicas = ⌈backlog / target⌉, scale to zero when empty.
* ``hindsight_optimal`` — the same reasoning as spotkit, but with perfect knowledge: it reads the
  future arrivals instead of estimating the rate, and starts the slots that will not be evicted
  soonest. It is an oracle schedule, not a proven optimum; `Simulation.lower_bound_usd` is the
  bound no policy can beat (no boots, no idle time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from policies.scaling import Memory, Observation, ScalingParams, decide
from policies.simulator import SimParams, Simulation, Step
from policies.workload import Arrival


def scaling_params(sim: SimParams) -> ScalingParams:
    return ScalingParams(max_slots=sim.max_slots, boot_seconds=sim.boot_seconds,
                         spot_price_per_hour=sim.spot_price_per_hour, evictions_per_hour=sim.evictions_per_hour,
                         wasted_seconds_per_eviction=sim.wasted_seconds_per_eviction)


@dataclass
class SpotkitPolicy:
    params: ScalingParams
    name: str = "spotkit"
    memory: Memory = field(default_factory=Memory)
    decisions: list[tuple[float, int, str, str]] = field(default_factory=list)

    def step(self, obs: Observation, sim: Simulation) -> Step:
        decision = decide(obs, self.params, self.memory)
        self.memory = decision.memory
        if not self.decisions or self.decisions[-1][1:3] != (decision.desired, decision.routing):
            self.decisions.append((obs.now, decision.desired, decision.routing, decision.reason))
        return Step(decision.desired, decision.to_api)


@dataclass
class HindsightPolicy(SpotkitPolicy):
    name: str = "hindsight_optimal"

    def step(self, obs: Observation, sim: Simulation) -> Step:
        horizon = 3600.0
        known = replace(obs, arrival_rate=sim.future_work(obs.now, horizon) / horizon)
        return super().step(known, sim)

    def slot_order(self, candidates: list[int], now: float, sim: Simulation) -> list[int]:
        """Start the slots whose next eviction is furthest away (the oracle knows the shocks)."""
        tick = int((now - sim.start) / sim.params.tick_seconds)
        return sorted(candidates, key=lambda index: sim.next_eviction_tick(index, tick), reverse=True)


@dataclass
class ApiOnly:
    name: str = "api_only"

    def step(self, obs: Observation, sim: Simulation) -> Step:
        return Step(0, tuple(j.job_id for j in obs.queue))


@dataclass
class FixedFleet:
    size: int
    name: str = "fixed_fleet"

    def step(self, obs: Observation, sim: Simulation) -> Step:
        return Step(self.size)


@dataclass
class QueueLength:
    """KEDA's queue scaler: replicas = ⌈backlog / target⌉, 5-minute cooldown before scaling down."""

    target_gpu_seconds: float
    max_slots: int
    cooldown_seconds: float = 300.0
    name: str = "queue_length"
    _lower_since: float | None = None

    def step(self, obs: Observation, sim: Simulation) -> Step:
        backlog = sum(j.remaining_gpu_seconds for j in obs.queue)
        want = min(self.max_slots, math.ceil(backlog / self.target_gpu_seconds))
        active = obs.running + obs.booting
        if want >= active:
            self._lower_since = None
            return Step(want)
        self._lower_since = self._lower_since if self._lower_since is not None else obs.now
        return Step(want if obs.now - self._lower_since >= self.cooldown_seconds else active)


def peak_fleet(arrivals: list[Arrival], sim: SimParams) -> int:
    """GPUs needed to keep up with the busiest hour of the trace."""
    hourly: dict[int, float] = {}
    for a in arrivals:
        hour = int(a.at // 3600)
        hourly[hour] = hourly.get(hour, 0.0) + sim.rates.gpu_seconds(a)
    return max(1, min(sim.max_slots, math.ceil(max(hourly.values()) / 3600)))


def contenders(arrivals: list[Arrival], sim: SimParams) -> list[object]:
    params = scaling_params(sim)
    return [SpotkitPolicy(params), ApiOnly(), FixedFleet(peak_fleet(arrivals, sim)),
            QueueLength(target_gpu_seconds=1800.0, max_slots=sim.max_slots), HindsightPolicy(params)]
