"""The spotkit scaling policy: a pure function from what the controller observes to how many spot
slots should run, where the work goes (self-host / API / split), and why.

The reasoning, in order:

1. **Deadlines first.** Jobs are taken earliest-deadline-first. For the queue prefix ending at job k,
   the fleet must deliver its work before k's deadline: ``needed ≥ work_k / (slack_k − boot) / (1 − loss)``
   GPUs, where ``boot`` counts only if no slot is running and ``loss`` is the share of paid time spot
   evictions waste (``evictions_per_hour × (boot + wasted) / 3600``).
2. **Route what the GPUs cannot make, or should not.** A job whose slack is shorter than the time a
   GPU needs to reach it goes to the API. When no GPU runs, the whole backlog goes to the API if
   that is cheaper than booting a GPU, draining it and idling through the grace period — the
   break-even, applied to the work actually waiting.
3. **Use the slack to batch.** A GPU that would idle between trickling jobs costs more than the
   jobs: while the queue needs less than one GPU, the policy lets it grow (up to the deadline minus
   the time to boot and drain it), then runs a GPU flat out. Utilization, not uptime, is what
   self-hosting needs — this is how it never runs a GPU below the break-even utilization.
4. **Hysteresis.** Scale up at once; scale down only after ``cooldown_seconds`` of lower demand;
   stop the last GPU only after idling ``idle_grace_seconds`` (about one boot: the point where
   idling costs as much as booting again).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class QueuedJob:
    job_id: int
    remaining_gpu_seconds: float
    deadline: float
    api_cost: float


@dataclass(frozen=True)
class Observation:
    now: float
    queue: tuple[QueuedJob, ...]  # not yet done, not routed to the API
    running: int  # slots processing
    booting: int  # slots paid for, not yet processing
    available: int  # slots that could be started now (not evicted, under the maximum)
    arrival_rate: float  # GPU-seconds of new work per second (measured, smoothed)
    boot_remaining: float = 0.0  # seconds until the first booting slot is ready


@dataclass(frozen=True)
class ScalingParams:
    max_slots: int
    boot_seconds: float  # allocate + boot + model load (warm disk)
    spot_price_per_hour: float
    evictions_per_hour: float  # per running slot (measured)
    wasted_seconds_per_eviction: float = 30.0
    cooldown_seconds: float = 600.0
    idle_grace_seconds: float | None = None  # default: one boot
    safety: float = 1.15  # head-room on every capacity estimate
    allow_api: bool = True
    min_running: int = 0  # the stack's minRunning: slots kept running whatever the queue says

    @property
    def loss(self) -> float:
        return min(0.5, self.evictions_per_hour * (self.boot_seconds + self.wasted_seconds_per_eviction) / 3600)

    @property
    def grace(self) -> float:
        return self.boot_seconds if self.idle_grace_seconds is None else self.idle_grace_seconds


@dataclass(frozen=True)
class Memory:
    """What the policy remembers between calls (returned, never mutated)."""

    last_up: float = -math.inf
    lower_since: float | None = None
    idle_since: float | None = None


@dataclass(frozen=True)
class Decision:
    desired: int
    to_api: tuple[int, ...]  # job ids to send to the metered API now
    routing: str  # "self-host" | "api" | "split"
    reason: str
    memory: Memory = field(default_factory=Memory)


def decide(obs: Observation, params: ScalingParams, memory: Memory) -> Decision:
    """The decision for this moment; never fewer slots than ``min_running`` (capped by the slots)."""
    decision = _decide(obs, params, memory)
    floor = min(params.min_running, params.max_slots)
    if decision.desired >= floor:
        return decision
    return replace(decision, desired=floor, reason=f"{decision.reason}; kept at minRunning {floor}")


def _decide(obs: Observation, params: ScalingParams, memory: Memory) -> Decision:
    per_gpu = 1 - params.loss
    active = obs.running + obs.booting
    boot_wait = 0.0 if obs.running else obs.boot_remaining if obs.booting else params.boot_seconds
    capacity = max(1, min(params.max_slots, active + obs.available))  # the most GPUs we could have
    price = params.spot_price_per_hour / 3600

    to_api: list[int] = []
    kept: list[QueuedJob] = []
    work = needed = 0.0
    for job in sorted(obs.queue, key=lambda j: j.deadline):  # 1 and 2: deadlines, earliest first
        window = job.deadline - obs.now - boot_wait
        demand = (work + job.remaining_gpu_seconds) * params.safety / per_gpu
        if params.allow_api and (window <= 0 or demand > window * capacity):
            to_api.append(job.job_id)  # not even every GPU we could have makes it
            continue
        kept.append(job)
        work += job.remaining_gpu_seconds
        needed = max(needed, demand / max(1.0, window))
    backlog = work

    if params.allow_api and kept and active == 0:  # 2. the break-even, on the work that waits
        gpus = max(1, min(capacity, math.ceil(needed)))
        gpu_cost = price * gpus * (params.boot_seconds + backlog / per_gpu / gpus + params.grace)
        api_cost = sum(j.api_cost for j in kept)
        if api_cost <= gpu_cost and _urgent(obs.now, kept, params, per_gpu, gpus):
            return Decision(0, tuple(to_api + [j.job_id for j in kept]), "api",
                            f"API ${api_cost:.3f} ≤ GPU ${gpu_cost:.3f} for {backlog:.0f} GPU-s waiting", memory)

    if active == 0 and kept and needed < 1 and not _urgent(obs.now, kept, params, per_gpu, 1):
        # 3. Less than one GPU's worth: let the batch grow while the slack allows.
        return Decision(0, tuple(to_api), _routing(to_api, kept),
                        f"batching {backlog:.0f} GPU-s until urgent", memory)
    steady_state = obs.arrival_rate * params.safety / per_gpu
    target = max(1, math.ceil(max(needed, steady_state) - 1e-9)) if kept else 0
    target = min(target, capacity)
    return _with_hysteresis(obs, params, memory, target, tuple(to_api), kept, backlog)


def _urgent(now: float, kept: list[QueuedJob], params: ScalingParams, per_gpu: float, gpus: int) -> bool:
    """Would waiting one more boot make some job miss its deadline on *gpus* GPUs?"""
    work = 0.0
    for job in sorted(kept, key=lambda j: j.deadline):
        work += job.remaining_gpu_seconds
        finish = now + 2 * params.boot_seconds + work * params.safety / per_gpu / gpus
        if finish >= job.deadline:
            return True
    return False


def _routing(to_api: list[int] | tuple[int, ...], kept: list[QueuedJob]) -> str:
    return "split" if to_api and kept else "api" if to_api else "self-host"


def _with_hysteresis(obs: Observation, params: ScalingParams, memory: Memory, target: int,
                     to_api: tuple[int, ...], kept: list[QueuedJob], backlog: float) -> Decision:
    active = obs.running + obs.booting
    routing = _routing(to_api, kept)
    if target > active:
        return Decision(target, to_api, routing, f"scale up to {target}: {backlog:.0f} GPU-s queued",
                        Memory(last_up=obs.now))
    if target == active:
        return Decision(target, to_api, routing, f"hold {target}", replace(memory, lower_since=None, idle_since=None))
    if target == 0:  # 4. nothing queued: stop only after the idle grace
        idle_since = memory.idle_since if memory.idle_since is not None else obs.now
        if obs.now - idle_since >= params.grace:
            return Decision(0, to_api, routing, "queue empty past the idle grace: stop", Memory(last_up=memory.last_up))
        return Decision(active, to_api, routing, "idle, within the grace", replace(memory, idle_since=idle_since))
    lower_since = memory.lower_since if memory.lower_since is not None else obs.now
    if obs.now - max(lower_since, memory.last_up) >= params.cooldown_seconds:
        return Decision(target, to_api, routing, f"scale down to {target} after the cooldown",
                        Memory(last_up=memory.last_up))
    return Decision(active, to_api, routing, "lower demand, within the cooldown",
                    replace(memory, lower_since=lower_since, idle_since=None))
