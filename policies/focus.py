"""Reconcile the month's estimate with the bill: an Azure Cost Management export of type FocusCost
(FOCUS 1.0, 1.0r2, 1.2-preview), read row by row — or a pay-as-you-go usage-details export, whose rows
`policies.usage_details` gives here as FOCUS rows.

What is compared, and how (docs/reports.md, "Checked against the bill"):

- Rows are kept when they belong to the environment — the resource group in their ``ResourceId`` (or
  Azure's ``x_ResourceGroupName``) — and counted, not used, otherwise.
- A row's cost (``BilledCost``: what the invoice says) counts in proportion to the share of its charge
  period that falls in the month, so an hour that straddles midnight at the month's end is split.
- ``ChargeCategory`` ``Credit`` and ``Adjustment`` rows are shown apart, never netted into a line;
  ``ChargeClass`` ``Correction`` rows count in their line and are also totalled, because they correct an
  earlier period.
- Lines: a slot's VM is **GPU compute** (per slot, with its billed hours from ``ConsumedQuantity``),
  other VMs are the **controller and jump hosts**, managed disks are **disks**, NAT gateways and public
  addresses are **NAT gateway**, storage accounts are **storage**, the rest is **other**.

The FOCUS version is recognised by its ``PricingCategory`` values (1.0: ``On-Demand`` /
``Commitment-Based``; 1.1 and later: ``Standard`` / ``Committed``; both have ``Dynamic`` for spot and
``Other``); a value outside them is an unknown version and refused. Pure: rows in, figures out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

REQUIRED = ("BilledCost", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ResourceId", "ServiceName")
PRICING_1_0 = {"On-Demand", "Commitment-Based", "Dynamic", "Other"}
PRICING_1_1 = {"Standard", "Committed", "Dynamic", "Other"}
APART = ("Credit", "Adjustment")
_GROUP = re.compile(r"/resourcegroups/([^/]+)/", re.IGNORECASE)
_KINDS = (("microsoft.compute/virtualmachines/", "vm"), ("microsoft.compute/disks/", "disks"),
          ("microsoft.network/natgateways/", "NAT gateway"), ("microsoft.network/publicipaddresses/", "NAT gateway"),
          ("microsoft.storage/storageaccounts/", "storage"))


class FocusError(ValueError):
    """The file is not a FocusCost export this reads: the reason, for one line."""


@dataclass
class Bill:
    """The environment's billed cost in the month, by line; what was left out, and why."""

    lines: dict[str, float] = field(default_factory=dict)
    slot_usd: dict[str, float] = field(default_factory=dict)
    slot_hours: dict[str, float] = field(default_factory=dict)  # ConsumedQuantity where the unit is hours
    apart: dict[str, float] = field(default_factory=dict)  # credits and adjustments
    corrections_usd: float = 0.0
    rows: int = 0
    other_environments: int = 0
    outside_month: int = 0
    version: str = ""
    spot_rows: int = 0


def _time(value: str, column: str, line: int) -> float:
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise FocusError(f"row {line}: {column} {value!r} is not a date and time") from None


def _money(value: str, line: int) -> float:
    try:
        amount = float(value)
    except ValueError:
        raise FocusError(f"row {line}: BilledCost {value!r} is not a number") from None
    if amount != amount or amount in (float("inf"), float("-inf")):
        raise FocusError(f"row {line}: BilledCost {value!r} is not a finite number")
    return amount


def _line_of(resource: str, slots: set[str]) -> tuple[str, str]:
    """(line, slot name or "") for a resource id."""
    lowered = resource.lower()
    for marker, kind in _KINDS:
        if marker in lowered:
            name = resource[lowered.index(marker) + len(marker):].split("/", 1)[0]
            if kind == "vm":
                return ("GPU compute", name) if name in slots else ("controller and jump hosts", "")
            return kind, ""
    return "other", ""


def read_bill(rows: Iterable[Mapping[str, str]], columns: Iterable[str], resource_group: str, slots: set[str],
              start: float, end: float) -> Bill:
    """The environment's billed cost in [start, end) by line. *columns* are the file's header."""
    missing = [c for c in REQUIRED if c not in set(columns)]
    if missing:
        raise FocusError(f"not a FocusCost export: it lacks the column(s) {', '.join(missing)}")
    bill, group = Bill(), resource_group.lower()
    seen_pricing: set[str] = set()
    for number, row in enumerate(rows, start=2):
        resource = row.get("ResourceId") or ""
        row_group = (row.get("x_ResourceGroupName") or "").lower()
        match = _GROUP.search(resource)
        if (row_group or (match.group(1).lower() if match else "")) != group:
            bill.other_environments += 1
            continue
        pricing = (row.get("PricingCategory") or "").strip()
        if pricing:
            if pricing not in PRICING_1_0 | PRICING_1_1:
                raise FocusError(f"row {number}: PricingCategory {pricing!r} is from an unknown FOCUS version "
                                 "(this reads 1.0, 1.0r2 and 1.1–1.2 exports)")
            seen_pricing.add(pricing)
        begins, ends = _time(row["ChargePeriodStart"], "ChargePeriodStart", number), \
            _time(row["ChargePeriodEnd"], "ChargePeriodEnd", number)
        overlap = max(0.0, min(ends, end) - max(begins, start))
        share = 1.0 if ends <= begins else overlap / (ends - begins)
        if ends > begins and overlap <= 0:
            bill.outside_month += 1
            continue
        cost = _money(row["BilledCost"], number) * share
        bill.rows += 1
        category = row["ChargeCategory"].strip()
        if category in APART:
            bill.apart[category] = bill.apart.get(category, 0.0) + cost
            continue
        if (row.get("ChargeClass") or "").strip() == "Correction":
            bill.corrections_usd += cost
        line, slot = _line_of(resource, slots)
        bill.lines[line] = bill.lines.get(line, 0.0) + cost
        if pricing == "Dynamic" or (row.get("x_PricingSubcategory") or "") == "Spot":
            bill.spot_rows += 1
        if slot:
            bill.slot_usd[slot] = bill.slot_usd.get(slot, 0.0) + cost
            if (row.get("ConsumedUnit") or "").strip().lower() in ("hour", "hours", "1 hour"):
                try:
                    bill.slot_hours[slot] = bill.slot_hours.get(slot, 0.0) + float(row["ConsumedQuantity"]) * share
                except (KeyError, ValueError):
                    pass
    bill.version = ("1.0" if seen_pricing & {"On-Demand", "Commitment-Based"} else
                    "1.1+" if seen_pricing & {"Standard", "Committed"} else "1.x")
    return bill


# Each line of the bill and the report's estimate of it (a path into `cost_usd.fixed`, or compute).
ESTIMATED_BY: dict[str, tuple[str, ...]] = {
    "GPU compute": ("gpu_compute",), "disks": ("disks",), "controller and jump hosts": ("controller host", "jump host"),
    "NAT gateway": ("NAT gateway",), "storage": ("storage",), "other": (),
}
NOT_ON_THE_AZURE_BILL = ("metered API (billed by its provider)", "engineering tax (people's time)")


def reconcile(report: Mapping[str, Any], bill: Bill) -> dict[str, Any]:
    """Estimate against the bill, line by line, with what explains the difference where it is known."""
    cost = report["cost_usd"]
    spot = report["prices"]["spot_price_per_hour"]
    lines: list[dict[str, Any]] = []
    for line, parts in ESTIMATED_BY.items():
        estimate = None if line == "GPU compute" and cost["gpu_compute"] is None else sum(
            (cost["gpu_compute"] if part == "gpu_compute" else cost["fixed"].get(part, 0.0)) for part in parts)
        billed = round(bill.lines.get(line, 0.0), 4)
        lines.append({"line": line, "estimated_usd": estimate, "billed_usd": billed,
                      "difference_usd": None if estimate is None else round(billed - estimate, 4),
                      "explanation": _why(line, bill, report, spot)})
    slots = []
    for slot in sorted(set(bill.slot_usd) | set(report["paid_node_hours_by_slot"])):
        hours = report["paid_node_hours_by_slot"].get(slot)
        rate = report.get("gpu_price_by_slot", {}).get(slot, {}).get("price_per_hour", spot)
        billed_hours = bill.slot_hours.get(slot)
        slots.append({"slot": slot, "recorded_hours": hours, "billed_hours": None if billed_hours is None
                      else round(billed_hours, 3), "estimated_usd": None if hours is None else round(hours * rate, 4),
                      "billed_usd": round(bill.slot_usd.get(slot, 0.0), 4)})
    known = [float(line["estimated_usd"]) for line in lines if line["estimated_usd"] is not None]
    estimated = None if len(known) < len(lines) else round(sum(known), 2)
    billed = round(sum(bill.lines.values()), 2)
    return {"lines": lines, "slots": slots, "estimated_usd": estimated, "billed_usd": billed,
            "difference_usd": None if estimated is None else round(billed - estimated, 2),
            "difference_share": None if not estimated else round((billed - estimated) / estimated, 4),
            "credits_and_adjustments_usd": {k: round(v, 4) for k, v in sorted(bill.apart.items())},
            "corrections_usd": round(bill.corrections_usd, 4), "not_on_the_azure_bill": list(NOT_ON_THE_AZURE_BILL),
            "rows": {"used": bill.rows, "other_environments": bill.other_environments,
                     "outside_the_month": bill.outside_month, "spot": bill.spot_rows},
            "focus_version": bill.version}


def _why(line: str, bill: Bill, report: Mapping[str, Any], spot: float) -> str:
    if line == "GPU compute":
        recorded = report["paid_node_hours"]
        billed_hours = sum(bill.slot_hours.values())
        if recorded is None:
            return "no power history this month: GPU hours were not estimated"
        if not billed_hours:
            return f"{recorded:g} h in the power history at ${spot}/h; the export gives no hours to compare"
        rate = bill.lines.get(line, 0.0) / billed_hours
        return (f"billed {billed_hours:.2f} h at ${rate:.4f}/h; the power history has {recorded:g} h at the price "
                f"book's ${spot}/h")
    if line == "other":
        return "resources the estimate has no line for (e.g. bandwidth, Key Vault, monitoring)"
    return "the estimate is the stated monthly figure (`spotkit report --help` names the flag)"
