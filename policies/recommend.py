"""What to do next month, from this month's report: stay, add slots, remove slots, or move the work
to the API — with its reasons in numbers, so a person can check them against the figures above it.

The rules, in order (the first that holds decides):

1. **Unknown paid time** — nothing can be said about the fleet's cost: run the controller, whose power
   history prices GPU hours.
2. **Self-hosting lost** (total cost > what the API would have charged): move the work to the API.
3. **Busy** (utilization ≥ `BUSY`): the fleet ran flat out; add slots (or raise maxSlots), especially
   when work was routed to the API because the fleet could not take it.
4. **Idle** (idle cost ≥ `IDLE_SHARE` of GPU compute): slots ran with nothing to do; remove slots or
   shorten the idle grace.
5. Otherwise **stay**.

Pure; `change` compares two months' reports figure by figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BUSY = 0.85  # utilization above which waiting work probably queued behind busy GPUs
IDLE_SHARE = 0.25  # idle cost as a share of GPU compute above which slots were kept for nothing


def recommend(report: Mapping[str, Any]) -> dict[str, Any]:
    cost = report["cost_usd"]
    total, equivalent, savings = cost["total"], report["api_equivalent_usd"], report["savings_usd"]
    utilization, break_even = report["utilization"], report["break_even_utilization"]
    audio = report["work"]["audio_seconds"]
    api_share = audio["api"] / (audio["fleet"] + audio["api"]) if audio["fleet"] + audio["api"] else 0.0
    if total is None or savings is None:
        return _says("measure", "GPU hours are unknown this month (no power history or controller decisions): "
                                "run the controller, which records when slots are billed")
    if savings < 0:
        reasons = [f"the month cost ${total:,.2f}; the API would have charged ${equivalent:,.2f}: "
                   f"self-hosting lost ${-savings:,.2f}"]
        if utilization is not None and break_even is not None and utilization < break_even:
            reasons.append(f"utilization {utilization:.1%} is below the break-even {break_even:.1%}")
        reasons.append("route to the API by configuration (the controller's budget and routing), keep the stack")
        return _says("move-to-api", *reasons)
    if utilization is not None and utilization >= BUSY:
        reasons = [f"the fleet was busy {utilization:.1%} of its paid time (≥ {BUSY:.0%})"]
        if api_share > 0:
            reasons.append(f"{api_share:.1%} of the audio went to the API, "
                           f"${cost['api']:,.2f} that more slots could have done")
        return _says("add-slots", *reasons, f"savings were ${savings:,.2f}: more capacity pays at this load")
    idle, gpu = report["idle_cost_usd"], cost["gpu_compute"]
    if idle is not None and gpu and idle >= IDLE_SHARE * gpu:
        return _says("remove-slots", f"idle GPU time cost ${idle:,.2f}, {idle / gpu:.0%} of GPU compute "
                                     f"(≥ {IDLE_SHARE:.0%})",
                     "remove a slot or shorten the idle grace so idle slots deallocate sooner")
    reasons = [f"savings ${savings:,.2f} against the API's ${equivalent:,.2f}"]
    if utilization is not None and break_even is not None:
        reasons.append(f"utilization {utilization:.1%} against a break-even of {break_even:.1%}")
    return _says("stay", *reasons)


def _says(action: str, *reasons: str) -> dict[str, Any]:
    return {"action": action, "reasons": list(reasons)}


# (figure, how to read it out of a report): what month over month compares.
COMPARED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("total_usd", ("cost_usd", "total")),
    ("api_equivalent_usd", ("api_equivalent_usd",)),
    ("savings_usd", ("savings_usd",)),
    ("paid_node_hours", ("paid_node_hours",)),
    ("utilization", ("utilization",)),
    ("fleet_audio_seconds", ("work", "audio_seconds", "fleet")),
    ("api_audio_seconds", ("work", "audio_seconds", "api")),
    ("evictions", ("evictions", "count")),
)


def change(report: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    """Each compared figure now, the previous month's, and the difference (None where either is unknown)."""
    figures: dict[str, Any] = {}
    for name, path in COMPARED:
        now, before = _get(report, path), _get(previous, path)
        delta = None if now is None or before is None else round(now - before, 4)
        figures[name] = {"now": now, "previous": before, "change": delta}
    return {"previous_month": previous["month"], "figures": figures}


def _get(report: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = report
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
