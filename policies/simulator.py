"""A month of a spot fleet, minute by minute, to compare scaling policies on the same demand.

Each tick (60 s): arrivals join the queue; each paid slot may be evicted (pre-drawn random shocks,
identical for every policy, so they face the same bad luck); the policy decides how many slots
should run and which jobs go to the metered API; booting slots become ready after the boot time;
running slots work earliest-deadline-first. Paid time = booting + running. An evicted slot wastes
its in-flight work and cannot be started again for ``capacity_gap_seconds`` (spot capacity gone).

The policy sees a bounded summary of the queue — queued jobs grouped by deadline into buckets of
``bucket_seconds`` (one `QueuedJob` per bucket: its work, its API price, its earliest deadline), as the
controller sees its queue in chunks — and routes whole buckets. Every per-tick step is O(buckets +
slots), and work done is O(jobs) over the month, so a month of any shape (floods included) simulates in
time linear in the trace, not in the backlog.

Costs are the variable ones a policy controls — GPU hours × spot price, plus API spend. Fixed
costs (disks of deallocated slots, the controller host) are the same for every GPU policy and are
reported by `policies.breakeven`, not here.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import deque
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
    bucket_seconds: float = 900.0  # the queue summary's deadline resolution


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
    _work_before: list[float] = field(init=False, repr=False)
    _next_eviction: list[list[int]] = field(init=False, repr=False)
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
        # Precomputed for the oracle: work arriving before each index; each slot's next eviction tick.
        self._work_before = [0.0]
        for work in self.work:
            self._work_before.append(self._work_before[-1] + work)
        threshold = p.evictions_per_hour * p.tick_seconds / 3600
        self._next_eviction = []
        for shocks in self.shocks:
            following, upcoming = [0] * ticks, ticks
            for tick in range(ticks - 1, -1, -1):
                upcoming = tick if shocks[tick] < threshold else upcoming
                following[tick] = upcoming
            self._next_eviction.append(following)

    def lower_bound_usd(self) -> float:
        """No policy can pay less: each job on the API or, with no boot and no idle, on a GPU."""
        price = self.params.spot_price_per_hour / 3600
        return sum(min(api, price * work) for api, work in zip(self.api_costs, self.work, strict=True))

    def future_work(self, now: float, horizon: float) -> float:
        """GPU-seconds arriving in [now, now + horizon) — only the hindsight oracle may ask."""
        low, high = _first_at_or_after(self.arrivals, now), _first_at_or_after(self.arrivals, now + horizon)
        return self._work_before[high] - self._work_before[low]

    def next_eviction_tick(self, slot: int, tick: int) -> int:
        """The first tick at or after *tick* whose shock evicts *slot* — only the oracle may ask."""
        return self._next_eviction[slot][min(tick, len(self._next_eviction[slot]) - 1)]

    def run(self, policy: Policy) -> Result:
        p = self.params
        dt = p.tick_seconds
        price = p.spot_price_per_hour / 3600
        slots = [Slot() for _ in range(p.max_slots)]
        queue = _DeadlineQueue(p.bucket_seconds, self.work, self.deadlines, self.api_costs)
        next_job, missed, evictions, max_running = 0, 0, 0, 0
        gpu_seconds = api_usd = 0.0
        recent: deque[tuple[float, float]] = deque()  # (arrival time, work) of the last hour, for the rate
        recent_work = 0.0
        tick = 0
        now = self.start
        while next_job < len(self.arrivals) or queue:
            while next_job < len(self.arrivals) and self.arrivals[next_job].at < now + dt:
                queue.add(next_job)
                recent.append((self.arrivals[next_job].at, self.work[next_job]))
                recent_work += self.work[next_job]
                next_job += 1
            while recent and recent[0][0] < now - 3600:
                recent_work -= recent.popleft()[1]
            for index, slot in enumerate(slots):  # spot evictions
                if slot.state != "off" and self.shocks[index][tick] < p.evictions_per_hour * dt / 3600:
                    evictions += 1
                    slot.state, slot.unavailable_until = "off", now + p.capacity_gap_seconds
                    queue.waste(p.wasted_seconds_per_eviction)
            running = sum(s.state == "running" for s in slots)
            booting = sum(s.state == "booting" for s in slots)
            available = sum(s.state == "off" and s.unavailable_until <= now for s in slots)
            ready = [s.ready_at - now for s in slots if s.state == "booting"]
            obs = Observation(now, queue.summary(), running, booting, available, max(0.0, recent_work) / 3600,
                              max(0.0, min(ready)) if ready else 0.0)
            step = policy.step(obs, self)
            for bucket in step.to_api:
                for job in queue.take(bucket):
                    api_usd += self.api_costs[job]
                    missed += now > self.deadlines[job]
            self._scale(slots, step.desired, now, policy)
            for slot in slots:
                if slot.state == "booting" and slot.ready_at <= now:
                    slot.state = "running"
            running = sum(s.state == "running" for s in slots)
            max_running = max(max_running, running)
            paid = sum(s.state != "off" for s in slots)
            gpu_seconds += paid * dt
            for job, left in queue.work_for(running * dt):
                missed += now + dt - left > self.deadlines[job]
            now += dt
            tick += 1
            if tick >= len(self.shocks[0]):
                missed += len(queue)
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


class _Bucket:
    __slots__ = ("api", "jobs", "work")

    def __init__(self) -> None:
        self.jobs: deque[int] = deque()  # in deadline order (arrivals are)
        self.work = 0.0
        self.api = 0.0


class _DeadlineQueue:
    """Queued jobs by deadline bucket, each bucket first-in first-out: what the policy sees is one
    `QueuedJob` per bucket; work is done earliest deadline first."""

    def __init__(self, width: float, work: list[float], deadlines: list[float], api_costs: list[float]) -> None:
        self.width, self.deadlines, self.api_costs, self.total_work = width, deadlines, api_costs, work
        self.remaining: dict[int, float] = {}
        self.buckets: dict[int, _Bucket] = {}
        self.keys: list[int] = []  # sorted

    def __len__(self) -> int:
        return len(self.remaining)

    def add(self, job: int) -> None:
        key = int(self.deadlines[job] // self.width)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket()
            if self.keys and key < self.keys[-1]:
                bisect.insort(self.keys, key)
            else:
                self.keys.append(key)
        bucket.jobs.append(job)
        bucket.work += self.total_work[job]
        bucket.api += self.api_costs[job]
        self.remaining[job] = self.total_work[job]

    def summary(self) -> tuple[QueuedJob, ...]:
        return tuple(QueuedJob(key, b.work, self.deadlines[b.jobs[0]], b.api)
                     for key in self.keys for b in (self.buckets[key],))

    def take(self, key: int) -> list[int]:
        """Remove a whole bucket (routed to the API); returns its jobs."""
        bucket = self.buckets.pop(key, None)
        if bucket is None:
            return []
        self.keys.remove(key)
        for job in bucket.jobs:
            del self.remaining[job]
        return list(bucket.jobs)

    def waste(self, seconds: float) -> None:
        """An eviction: the first job in line loses its in-flight work."""
        if self.keys:
            bucket = self.buckets[self.keys[0]]
            self.remaining[bucket.jobs[0]] += seconds
            bucket.work += seconds

    def work_for(self, capacity: float) -> list[tuple[int, float]]:
        """Spend *capacity* GPU-seconds earliest deadline first; returns (job, capacity left) as each finishes."""
        finished: list[tuple[int, float]] = []
        while capacity > 1e-9 and self.keys:
            key = self.keys[0]
            bucket = self.buckets[key]
            job = bucket.jobs[0]
            used = min(capacity, self.remaining[job])
            capacity -= used
            self.remaining[job] -= used
            bucket.work -= used
            if self.remaining[job] <= 1e-9:
                bucket.jobs.popleft()
                bucket.api -= self.api_costs[job]
                del self.remaining[job]
                finished.append((job, capacity))
                if not bucket.jobs:
                    del self.buckets[key]
                    self.keys.pop(0)
        return finished
