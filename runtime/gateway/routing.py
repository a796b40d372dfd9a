"""Which path serves a request, and what it costs: pure functions of the controller's latest decision.

The controller owns routing (`RoutingRecord`, from its break-even and budget); the gateway only applies
it per request, adding the one thing the controller cannot know — this request's deadline:

* ``api``: the metered API (the controller found it cheaper, or the only way to make deadlines);
* ``split``: the fleet, unless no fleet node is up and the request cannot wait for one to boot — a
  synchronous request waits seconds, a GPU boots in minutes;
* ``self-host``, or no current decision (none yet, or older than ``STALE_SECONDS``: a controller
  that stopped deciding): the fleet. The gateway never overrides a ``self-host`` decision, which may
  come from the month's API budget being spent.

Costs are estimates from the inputs the controller published with its decision (measured, or its
price book and priors): the API by audio minute, the fleet by the GPU time the audio takes at the
measured real-time factor. A cache hit costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.records import AuditRecord, RoutingRecord

STALE_SECONDS = 15 * 60
DEFAULT_BOOT_SECONDS = 180.0  # the controller's prior, until it publishes a measured one


@dataclass(frozen=True)
class Choice:
    path: str  # fleet | api
    reason: str


def choose_path(routing: RoutingRecord | None, now: float, deadline_seconds: float, fleet_up: bool,
                boot_seconds: float = DEFAULT_BOOT_SECONDS) -> Choice:
    """Fleet or metered API for one request (see the module docstring for the rules)."""
    if routing is None:
        return Choice("fleet", "no routing decided yet: the fleet")
    if now - routing.at > STALE_SECONDS:
        return Choice("fleet", f"the controller's routing is {now - routing.at:.0f} s old: the fleet")
    if routing.routing == "api":
        return Choice("api", "the controller routes to the metered API")
    if routing.routing == "split" and not fleet_up and deadline_seconds < boot_seconds:
        return Choice("api", f"split routing, no fleet node up, and the request's deadline "
                             f"({deadline_seconds:.0f} s) is shorter than a boot ({boot_seconds:.0f} s)")
    return Choice("fleet", f"the controller's routing is {routing.routing}")


def _input(audit: AuditRecord | None, name: str) -> float | None:
    entry: Any = (audit.inputs if audit is not None else {}).get(name)
    value = entry.get("value") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def boot_seconds(audit: AuditRecord | None) -> float:
    value = _input(audit, "boot_seconds")
    return value if value is not None and value > 0 else DEFAULT_BOOT_SECONDS


def cost_usd(path: str, audio_seconds: float, audit: AuditRecord | None) -> tuple[float, bool]:
    """(estimated cost, priced): priced is False when the controller has published no inputs yet."""
    if path == "cache":
        return 0.0, True
    if path == "api":
        price = _input(audit, "api_price_per_audio_minute")
        return (round(audio_seconds / 60 * price, 6), True) if price is not None else (0.0, False)
    hourly, rtf = _input(audit, "spot_price_per_hour"), _input(audit, "audio_rtf")
    if hourly is None or rtf is None or rtf <= 0:
        return 0.0, False
    return round(audio_seconds / rtf / 3600 * hourly, 6), True
