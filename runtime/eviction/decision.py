"""What a node does about its interruption events at a given moment — a pure function.

Timeline of a spot eviction (Azure gives ``Preempt`` at least 30 s of notice, best effort)::

    t0            event visible at IMDS (Scheduled, NotBefore = t0 + 30 s)
    t0 + ≤1 s     the watcher sees it: stop pulling; requeue every leased segment the engine has
                  not started; the batch in the engine finishes only if it will end before
                  NotBefore − safety margin, otherwise it is requeued at once too
    drained       no lease held — the watcher runs the drain sequence, in this order: flush usage,
                  final heartbeat saying ``drained``, eviction record, alert, acknowledgement;
                  only then may the agent process exit (``--exit-when-drained``, SIGTERM)
    deadline      a batch still in the engine is requeued now, whatever was predicted
    NotBefore     (or at the acknowledgement) Azure deallocates the VM; the process exits by then
                  (``exit_by``) even if the sequence could not finish

``Reboot``/``Redeploy`` come 10–15 minutes ahead: the node keeps working (starting no batch that
would straddle the deadline) until the deadline minus one batch, then drains the same way and
acknowledges, so the VM restarts as soon as it is empty instead of idling until NotBefore (the
persistent disk survives, the temporary disk does not). An operator's ``Drain`` request and the
service manager's ``SIGTERM`` drain at once and are never acknowledged.

An event that names several VMs is released for all of them by one acknowledgement (Azure's rule),
so a node acknowledges it only once every VM it names has drained (`Reaction.ack_after`: the
watcher checks the others' drained markers in the store) — or never, and it starts at NotBefore.

``Freeze`` holds back a batch that would straddle it; once Started it holds all work for its
``DurationInSeconds`` (or at most ``max_freeze_hold_seconds`` when unknown), not for as long as the
event stays listed (Azure keeps a Freeze Started for minutes of health checks after the pause).

An event that disappears was cancelled: the node resumes — unless it drained for SIGTERM, which
never disappears.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.eviction.events import EVICTING, InterruptionEvent
from runtime.records import EvictionRecord


@dataclass(frozen=True)
class DrainPolicy:
    safety_margin_seconds: float = 5.0  # leave this long before NotBefore to flush, record, ack
    acknowledge_types: tuple[str, ...] = ("Preempt", "Terminate", "Reboot", "Redeploy")
    work_until_types: tuple[str, ...] = ("Reboot", "Redeploy")  # long notice: work until deadline − a batch
    max_freeze_hold_seconds: float = 60.0  # a Started Freeze of unknown duration holds work this long at most
    page_each: bool = True  # False (eviction_alerts = digest): evictions are recorded, the controller digests them


@dataclass(frozen=True)
class NodeView:
    now: float
    batch_started_at: float | None = None  # an engine batch is running since then
    predicted_batch_seconds: float = 0.0  # how long the running (or next) batch takes
    drained_for: str | None = None  # the event the node is drained for, if any


@dataclass(frozen=True)
class NodeTotals:
    """What a node has finished, handed back and wasted so far; a drain's record is the difference."""

    finished: int = 0
    requeued: int = 0
    wasted_gpu_seconds: float = 0.0


@dataclass(frozen=True)
class Reaction:
    """Everything decided about the node's events at one moment; the watcher only executes it."""

    action: str  # "run" | "drain" | "hold" | "resume"
    reason: str
    event: InterruptionEvent | None = None
    deadline: float | None = None  # drain: everything settled by then
    finish_in_flight: bool = False  # drain: the running batch fits before the deadline
    abandon_running: bool = False  # drain: requeue the running batch now (it cannot finish in time)
    acknowledge: bool = False  # drain: approve the event once drained
    ack_after: tuple[str, ...] = ()  # drain: …but only once these other VMs the event names have drained too
    exit_by: float | None = None  # drain: the process may exit by then even if the sequence is unfinished
    hold_until: float | None = None  # hold: start no batch that would end after this
    page: bool = False  # drain: alert on-call once drained (only the cloud's own events page)


def pages(event: InterruptionEvent, policy: DrainPolicy | None = None) -> bool:
    """Whether a drain for *event* pages on-call. Only the cloud's own events (Scheduled Events from
    IMDS) do; an operator's `spotkit node drain` and a routine `systemctl stop` (SIGTERM) were asked
    for by someone who knows, so they are recorded (eviction record, `evictions list`) but not paged.
    With ``eviction_alerts = digest`` no single eviction pages: the controller sends a storm alert and a
    daily digest instead (`storm`, `digest_day`)."""
    return event.origin == "imds" and (policy is None or policy.page_each)


@dataclass(frozen=True)
class StormPolicy:
    count: int = 3  # spot evictions within the window that make a storm
    window_seconds: float = 3600.0


def storm(evictions: list[EvictionRecord], now: float, policy: StormPolicy) -> list[EvictionRecord]:
    """The spot evictions of the last window when there are enough of them to be a storm (one page for
    all of them, whatever the per-node setting), else nothing."""
    recent = [e for e in evictions if e.origin == "imds" and now - policy.window_seconds <= e.seen_at <= now]
    return sorted(recent, key=lambda e: e.seen_at) if len(recent) >= policy.count else []


def storm_period(now: float, policy: StormPolicy) -> int:
    """The window a storm alert belongs to: one alert per window, however many rounds see it."""
    return int(now // policy.window_seconds)


def ends_paid_time(origin: str, event_type: str) -> bool:
    """Whether the event takes the VM away (a spot ``Preempt`` deallocates or deletes it, ``Terminate``
    deletes it): its compute stops being billed when it happens, so the slot's power history records
    it (`runtime.records.PowerEvent` ``evicted``). Reboots, redeploys and freezes keep the VM paid."""
    return origin == "imds" and event_type in ("Preempt", "Terminate")


def deadline_of(event: InterruptionEvent, now: float, policy: DrainPolicy) -> float:
    if event.status == "Started" or event.not_before is None:
        return now
    return max(now, event.not_before - policy.safety_margin_seconds)


def freeze_over(event: InterruptionEvent, now: float, policy: DrainPolicy) -> bool:
    """A Started Freeze whose pause has had its time (its duration, or the cap when unknown)."""
    if event.status != "Started":
        return False
    started = event.started_seen_at if event.started_seen_at is not None else now
    hold = event.duration_seconds if event.duration_seconds > 0 else policy.max_freeze_hold_seconds
    return now >= started + hold + policy.safety_margin_seconds


def react(events: list[InterruptionEvent], node: NodeView, policy: DrainPolicy) -> Reaction:
    """Events are this node's current ones (already filtered to its own VM name)."""
    evicting = [e for e in events if e.event_type in EVICTING]
    if evicting:
        event = min(evicting, key=lambda e: (deadline_of(e, node.now, policy), e.event_id))
        deadline = deadline_of(event, node.now, policy)
        drain_at = deadline - node.predicted_batch_seconds
        if event.event_type in policy.work_until_types and node.drained_for is None and node.now < drain_at:
            return Reaction("hold", f"{event.event_type} {event.event_id} in {deadline - node.now:.0f} s: working "
                                    f"until {drain_at - node.now:.0f} s before it", event, deadline,
                            hold_until=deadline)
        running = node.batch_started_at is not None
        fits = (node.batch_started_at is not None and node.now < deadline
                and node.batch_started_at + node.predicted_batch_seconds <= deadline)
        how = ("the running batch fits before the deadline" if fits
               else "the running batch cannot finish in time: requeue it" if running
               else "nothing running")
        acknowledge = event.event_type in policy.acknowledge_types and event.origin == "imds"
        return Reaction("drain", f"{event.event_type} {event.event_id}: {how}", event, deadline,
                        finish_in_flight=fits, abandon_running=running and not fits, acknowledge=acknowledge,
                        ack_after=event.others if acknowledge else (),
                        exit_by=deadline + policy.safety_margin_seconds, page=pages(event, policy))
    freezes = [e for e in events if e.event_type == "Freeze" and not freeze_over(e, node.now, policy)]
    if freezes:
        event = min(freezes, key=lambda e: (deadline_of(e, node.now, policy), e.event_id))
        start = deadline_of(event, node.now, policy)
        return Reaction("hold", f"Freeze {event.event_id}: start no batch that straddles it",
                        event, hold_until=start)
    if node.drained_for is not None:
        return Reaction("resume", f"event {node.drained_for} is gone (cancelled): resume pulling")
    return Reaction("run", "no interruption events")
