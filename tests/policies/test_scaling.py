"""The scaling policy as a pure function: deadlines, routing, batching, hysteresis."""

from __future__ import annotations

from dataclasses import replace

from policies.scaling import Decision, Memory, Observation, QueuedJob, ScalingParams, decide

NOW = 1_000_000.0
PARAMS = ScalingParams(max_slots=8, boot_seconds=180, spot_price_per_hour=0.0627, evictions_per_hour=0.05,
                       cooldown_seconds=600)


def job(i: int, work: float, slack: float, api: float = 1.0) -> QueuedJob:
    return QueuedJob(i, work, NOW + slack, api)


def obs(*jobs: QueuedJob, running: int = 0, booting: int = 0, available: int = 8, rate: float = 0.0,
        now: float = NOW) -> Observation:
    return Observation(now, tuple(jobs), running, booting, available, rate)


def test_nothing_to_do() -> None:
    d = decide(obs(), PARAMS, Memory())
    assert (d.desired, d.to_api, d.routing) == (0, (), "self-host")


def test_slack_lets_the_batch_grow() -> None:
    d = decide(obs(job(1, 30, 6 * 3600)), PARAMS, Memory())
    assert d.desired == 0 and d.to_api == () and "batching" in d.reason


def test_urgent_backlog_starts_gpus() -> None:
    d = decide(obs(job(1, 600, 1000)), PARAMS, Memory())
    assert d.desired == 1 and "scale up" in d.reason


def test_deadlines_size_the_fleet() -> None:
    jobs = [job(i, 3000, 3600) for i in range(6)]  # 18,000 GPU-s due within the hour
    d = decide(obs(*jobs), PARAMS, Memory())
    assert d.desired >= 6 and d.to_api == ()


def test_unreachable_job_goes_to_the_api() -> None:
    d = decide(obs(job(1, 1000, 200), job(2, 100, 7200), available=1), PARAMS, Memory())
    assert d.to_api == (1,) and d.routing == "split"


def test_booting_slot_counts_its_remaining_boot_only() -> None:
    nearly = replace(obs(job(1, 100, 200), booting=1, available=0), boot_remaining=30)
    assert decide(nearly, PARAMS, Memory()).to_api == ()


def test_cheap_api_beats_booting_for_a_small_urgent_backlog() -> None:
    pricey_gpu = replace(PARAMS, spot_price_per_hour=10.0)
    d = decide(obs(job(1, 60, 400, api=0.01)), pricey_gpu, Memory())
    assert (d.desired, d.to_api, d.routing) == (0, (1,), "api") and "≤ GPU" in d.reason


def test_api_not_allowed_keeps_everything_on_gpus() -> None:
    d = decide(obs(job(1, 1000, 200)), replace(PARAMS, allow_api=False), Memory())
    assert d.to_api == () and d.desired >= 1


def test_eviction_rate_adds_capacity() -> None:
    jobs = [job(i, 3000, 7200) for i in range(10)]
    calm = decide(obs(*jobs), PARAMS, Memory()).desired
    stormy = decide(obs(*jobs), replace(PARAMS, evictions_per_hour=2.0), Memory()).desired
    assert stormy > calm


def test_never_more_than_available() -> None:
    jobs = [job(i, 3000, 3600) for i in range(20)]
    assert decide(obs(*jobs, available=2), PARAMS, Memory()).desired == 2


def test_scale_down_waits_for_the_cooldown() -> None:
    busy = obs(job(1, 200, 7200), running=4, rate=0.0)
    first = decide(busy, PARAMS, Memory(last_up=NOW - 60))
    assert first.desired == 4 and "cooldown" in first.reason
    later = decide(replace(busy, now=NOW + 700), PARAMS, first.memory)
    assert later.desired < 4


def test_idle_gpus_stay_through_the_grace_then_stop() -> None:
    idle = obs(running=2)
    first = decide(idle, PARAMS, Memory())
    assert first.desired == 2 and "grace" in first.reason
    assert decide(replace(idle, now=NOW + 200), PARAMS, first.memory).desired == 0


def test_no_flapping_within_the_cooldown() -> None:
    memory, seen = Memory(), []
    for minute in range(10):  # demand wobbles between needing 3 and 2 GPUs
        jobs = [job(i, 3000, 3600 * (1 if minute % 2 else 2)) for i in range(5)]
        decision: Decision = decide(obs(*jobs, running=3, now=NOW + 60 * minute), PARAMS, memory)
        memory = decision.memory
        seen.append(decision.desired)
    assert min(seen) >= 3  # never scaled down and back up inside ten minutes


def test_min_running_is_a_floor() -> None:
    """The stack's minRunning keeps slots running over an empty queue, and says so."""
    from policies.scaling import Memory, Observation, ScalingParams, decide

    params = ScalingParams(max_slots=3, boot_seconds=180, spot_price_per_hour=0.06, evictions_per_hour=0.05,
                           min_running=2)
    decision = decide(Observation(0.0, (), 0, 0, 3, 0.0), params, Memory())
    assert decision.desired == 2 and "minRunning 2" in decision.reason
    assert decide(Observation(0.0, (), 0, 0, 3, 0.0), replace(params, min_running=0), Memory()).desired == 0
