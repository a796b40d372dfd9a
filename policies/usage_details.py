"""Pay-as-you-go bills: the Cost Management *cost and usage details (usage only)* export, read as FOCUS.

FocusCost exports exist only for EA and MCA billing accounts; a pay-as-you-go (MOSP) subscription
exports usage details instead, schema version 2019-11-01 (learn.microsoft.com, dataset-schema
`cost-usage-details-pay-as-you-go`): one row per resource, meter and day, with ``PreTaxCost``,
``UsageDateTime``, ``InstanceId`` (the resource's ARM id), ``ResourceGroup``, ``MeterCategory``,
``MeterName`` and ``UsageQuantity``. Each row is given to `policies.focus.read_bill` as the FOCUS row it
corresponds to, so there is one reconciliation:

- ``BilledCost`` ← ``PreTaxCost``; the charge period is the row's UTC day;
- ``ChargeCategory`` is ``Usage`` (the dataset holds usage only: no purchases, credits or refunds —
  those are on the invoice, not in this file, and the report says so);
- ``ResourceId`` ← ``InstanceId``, ``x_ResourceGroupName`` ← ``ResourceGroup``, ``ServiceName`` ← ``MeterCategory``;
- ``PricingCategory`` is ``Dynamic`` (spot) when the meter is a spot meter — its name or sub-category
  says ``Spot``, the only place this schema says it — else ``Standard``;
- virtual machines' ``UsageQuantity`` is in hours (their meters are per hour), so slots' billed hours
  compare with the power history as with FOCUS.
Pure: rows in, rows out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta

from policies.focus import FocusError

REQUIRED = ("PreTaxCost", "UsageDateTime", "InstanceId", "MeterCategory")
VERSION = "pay-as-you-go usage details (2019-11-01)"


def is_usage_details(columns: Iterable[str]) -> bool:
    """Whether a header is a pay-as-you-go usage-details export's rather than a FocusCost one."""
    names = set(columns)
    return "PreTaxCost" in names and "BilledCost" not in names


def focus_rows(rows: Iterable[Mapping[str, str]], columns: Iterable[str]) -> Iterator[dict[str, str]]:
    """The FOCUS row each usage-details row stands for."""
    missing = [c for c in REQUIRED if c not in set(columns)]
    if missing:
        raise FocusError(f"not a usage-details export: it lacks the column(s) {', '.join(missing)}")
    for number, row in enumerate(rows, start=2):
        day = _day(row.get("UsageDateTime") or "", number)
        meter = f"{row.get('MeterName') or ''} {row.get('MeterSubCategory') or ''}"
        vm = (row.get("MeterCategory") or "").strip().lower() == "virtual machines"
        yield {
            "BilledCost": row.get("PreTaxCost") or "", "ChargeCategory": "Usage",
            "ChargePeriodStart": day.isoformat(), "ChargePeriodEnd": (day + timedelta(days=1)).isoformat(),
            "ResourceId": row.get("InstanceId") or "", "x_ResourceGroupName": row.get("ResourceGroup") or "",
            "ServiceName": row.get("MeterCategory") or "",
            "PricingCategory": "Dynamic" if "spot" in meter.lower().split() else "Standard",
            "ConsumedQuantity": (row.get("UsageQuantity") or "") if vm else "", "ConsumedUnit": "Hours" if vm else "",
        }


def _day(value: str, line: int) -> datetime:
    """A usage day: ISO (``2026-11-10``, with or without a time) or the US form the portal writes."""
    text = value.strip()
    for form in ("iso", "%m/%d/%Y"):
        try:
            moment = (datetime.fromisoformat(text.replace("Z", "+00:00")) if form == "iso"
                      else datetime.strptime(text, form))
        except ValueError:
            continue
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).replace(hour=0, minute=0, second=0,
                                                                                  microsecond=0)
    raise FocusError(f"row {line}: UsageDateTime {value!r} is not a date")
