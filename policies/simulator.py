"""A month of a spot fleet, minute by minute, to compare scaling policies on the same demand.

Each tick (60 s): arrivals join the queue; each paid slot may be evicted (pre-drawn random shocks,
identical for every policy, so they face the same bad luck); the policy decides how many slots
should run and which jobs go to the metered API; booting slots become ready after the boot time;
running slots work earliest-deadline-first. Paid time = booting + running. An evicted slot wastes
its in-flight work and cannot be started again for ``capacity_gap_seconds`` (spot capacity gone).

Costs are the variable ones a policy controls — GPU hours × spot price, plus API spend. Fixed
costs (disks of deallocated slots, the controller host) are the same for every GPU policy and are
reported by `policies.breakeven`, not here.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from policies.scaling import Observation, QueuedJob
from policies.workload import Arrival, Rates


@dataclass(frozen=True)
class SimParams:
    rates: Rates
    spot_price_per_hour: float
    max_slots: int
    boot_seconds: float = 180.0
    evictions_per_hour: float = 0.05
    wasted_seconds_per_eviction: float = 30.0
    capacity_gap_seconds: float = 1800.0
    deadline_seconds: float = 6 * 3600.0
    tick_seconds: float = 60.0
    seed: int = 7


@dataclass
class Step:
    desired: int
    to_api: Sequence[int] = ()


class Policy(Protocol):
    name: str

    def step(self, obs: Observation, sim: Simulation) -> Step: ...


@dataclass
class Slot:
    state: str = "off"  # off | booting | running
    ready_at: float = 0.0
    unavailable_until: float = 0.0


@dataclass
class Result:
    policy: str
    cost_usd: float
    gpu_hours: float
    api_usd: float
    jobs: int
    missed: int
    evictions: int
    max_running: int

    @property
    def deadline_miss_rate(self) -> float:
        return self.missed / self.jobs if self.jobs else 0.0

    def as_dict(self) -> dict[str, float | int | str]:
        return {"policy": self.policy, "cost_usd": round(self.cost_usd, 4), "deadline_miss_rate":
                round(self.deadline_miss_rate, 6), "gpu_hours": round(self.gpu_hours, 3),
                "api_usd": round(self.api_usd, 4), "jobs": self.jobs, "missed": self.missed,
                "evictions": self.evictions, "max_running": self.max_running}


@dataclass
class Simulation:
    arrivals: Sequence[Arrival]
    params: SimParams
    work: list[float] = field(init=False)
    deadlines: list[float] = field(init=False)
    api_costs: list[float] = field(init=False)
    start: float = field(init=False)
    shocks: list[list[float]] = field(init=False)

    def __post_init__(self) -> None:
        p = self.params
        self.work = [p.rates.gpu_seconds(a) for a in self.arrivals]
        self.deadlines = [a.at + p.deadline_seconds for a in self.arrivals]
        self.api_costs = [p.rates.api_cost(a) for a in self.arrivals]
        self.start = math.floor(self.arrivals[0].at / p.tick_seconds) * p.tick_seconds
        end = self.arrivals[-1].at + p.deadline_seconds + 86400
        ticks = int((end - self.start) / p.tick_seconds) + 1
        rng = random.Random(p.seed)
        self.shocks = [[rng.random() for _ in range(ticks)] for _ in range(p.max_slots)]

    def lower_bound_usd(self) -> float:
        """No policy can pay less: each job on the API or, with no boot and no idle, on a GPU."""
        price = self.params.spot_price_per_hour / 3600
        return sum(min(api, price * work) for api, work in zip(self.api_costs, self.work, strict=True))

    def future_work(self, now: float, horizon: float) -> float:
        """GPU-seconds arriving in [now, now + horizon) — only the hindsight oracle may ask."""
        index = _first_at_or_after(self.arrivals, now)
        total = 0.0
        while index < len(self.arrivals) and self.arrivals[index].at < now + horizon:
            total += self.work[index]
            index += 1
        return total

    def run(self, policy: Policy) -> Result:
        p = self.params
        dt = p.tick_seconds
        price = p.spot_price_per_hour / 3600
        slots = [Slot() for _ in range(p.max_slots)]
        heap: list[tuple[float, int]] = []  # (deadline, job) of queued jobs
        remaining: dict[int, float] = {}
        next_job, done, missed, evictions, max_running = 0, 0, 0, 0, 0
        gpu_seconds = api_usd = 0.0
        recent: list[tuple[float, float]] = []  # (arrival time, work) of the last hour, for the rate
        tick = 0
        now = self.start
        while next_job < len(self.arrivals) or remaining:
            while next_job < len(self.arrivals) and self.arrivals[next_job].at < now + dt:
                remaining[next_job] = self.work[next_job]
                heapq.heappush(heap, (self.deadlines[next_job], next_job))
                recent.append((self.arrivals[next_job].at, self.work[next_job]))
                next_job += 1
            recent = [r for r in recent if r[0] >= now - 3600]
            for index, slot in enumerate(slots):  # spot evictions
                if slot.state != "off" and self.shocks[index][tick] < p.evictions_per_hour * dt / 3600:
                    evictions += 1
                    slot.state, slot.unavailable_until = "off", now + p.capacity_gap_seconds
                    if heap:
                        _, first = heap[0]
                        remaining[first] = remaining[first] + p.wasted_seconds_per_eviction
            running = sum(s.state == "running" for s in slots)
            booting = sum(s.state == "booting" for s in slots)
            available = sum(s.state == "off" and s.unavailable_until <= now for s in slots)
            queue = tuple(QueuedJob(j, remaining[j], self.deadlines[j], self.api_costs[j]) for _, j in heap)
            ready = [s.ready_at - now for s in slots if s.state == "booting"]
            obs = Observation(now, queue, running, booting, available, sum(w for _, w in recent) / 3600,
                              max(0.0, min(ready)) if ready else 0.0)
            step = policy.step(obs, self)
            for job in step.to_api:
                if job in remaining:
                    api_usd += self.api_costs[job]
                    missed += now > self.deadlines[job]
                    done += 1
                    del remaining[job]
            if step.to_api:  # only routing removes queued jobs; otherwise the heap is intact
                heap = [(d, j) for d, j in heap if j in remaining]
                heapq.heapify(heap)
            self._scale(slots, step.desired, now, policy)
            for slot in slots:
                if slot.state == "booting" and slot.ready_at <= now:
                    slot.state = "running"
            running = sum(s.state == "running" for s in slots)
            max_running = max(max_running, running)
            paid = sum(s.state != "off" for s in slots)
            gpu_seconds += paid * dt
            capacity = running * dt
            while capacity > 1e-9 and heap:
                deadline, job = heap[0]
                used = min(capacity, remaining[job])
                capacity -= used
                remaining[job] -= used
                if remaining[job] <= 1e-9:
                    heapq.heappop(heap)
                    del remaining[job]
                    done += 1
                    finished = now + dt - capacity
                    missed += finished > deadline
            now += dt
            tick += 1
            if tick >= len(self.shocks[0]):
                missed += len(remaining)
                break
        return Result(policy.name, gpu_seconds * price + api_usd, gpu_seconds / 3600, api_usd,
                      len(self.arrivals), missed, evictions, max_running)

    def _scale(self, slots: list[Slot], desired: int, now: float, policy: Policy) -> None:
        active = [i for i, s in enumerate(slots) if s.state != "off"]
        if desired > len(active):
            candidates = [i for i, s in enumerate(slots) if s.state == "off" and s.unavailable_until <= now]
            order = getattr(policy, "slot_order", None)
            if order is not None:
                candidates = order(candidates, now, self)
            for index in candidates[: desired - len(active)]:
                slots[index].state, slots[index].ready_at = "booting", now + self.params.boot_seconds
        elif desired < len(active):
            # Stop booting slots first (no work lost), then running ones.
            victims = sorted(active, key=lambda i: slots[i].state == "running")[: len(active) - desired]
            for index in victims:
                slots[index].state = "off"


def _first_at_or_after(arrivals: Sequence[Arrival], at: float) -> int:
    low, high = 0, len(arrivals)
    while low < high:
        mid = (low + high) // 2
        if arrivals[mid].at < at:
            low = mid + 1
        else:
            high = mid
    return low
