"""Reading a FocusCost export and checking the estimate against it. The files are built here from
the FOCUS specification's columns (and Azure's ``x_`` extensions), with the awkward rows a real bill
has: other environments, credits, corrections, an hour straddling the month's end, 1.0's value names."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from policies.focus import FocusError, read_bill, reconcile
from policies.power import PaidTime
from policies.prices import VmPrices, load_price_book
from policies.report import FixedCosts, ReportInputs, build_report, markdown
from runtime.errors import SpotkitError
from runtime.records import UsageRecord, totals_of

COLUMNS = ["BilledCost", "EffectiveCost", "ListCost", "BillingCurrency", "ChargeCategory", "ChargeClass",
           "ChargePeriodStart", "ChargePeriodEnd", "ResourceId", "ResourceName", "ServiceName", "SkuId",
           "PricingCategory", "x_PricingSubcategory", "ConsumedQuantity", "ConsumedUnit", "Tags"]
SUB = "/subscriptions/0000/resourceGroups/{group}/providers/"
START = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
END = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def row(resource: str, cost: float, *, group: str = "spotkit-prod", start: str = "2026-11-10T00:00:00Z",
        end: str = "2026-11-11T00:00:00Z", category: str = "Usage", charge_class: str = "", pricing: str = "Standard",
        hours: float | None = None) -> dict[str, str]:
    return {"BilledCost": str(cost), "EffectiveCost": str(cost), "ListCost": str(cost), "BillingCurrency": "USD",
            "ChargeCategory": category, "ChargeClass": charge_class, "ChargePeriodStart": start,
            "ChargePeriodEnd": end, "ResourceId": SUB.format(group=group) + resource,
            "ResourceName": resource.rsplit("/", 1)[-1], "ServiceName": "Virtual Machines", "SkuId": "x",
            "PricingCategory": pricing, "x_PricingSubcategory": "Spot" if pricing == "Dynamic" else "",
            "ConsumedQuantity": "" if hours is None else str(hours), "ConsumedUnit": "Hours" if hours else "",
            "Tags": "{}"}


VM = "Microsoft.Compute/virtualMachines/"
BILL = [
    row(VM + "slot-1", 5.0, pricing="Dynamic", hours=80.0),
    row(VM + "slot-2", 1.25, pricing="Dynamic", hours=20.0),
    # An hour straddling the month's end: half of it is November's.
    row(VM + "slot-1", 0.0626, pricing="Dynamic", hours=1.0, start="2026-11-30T23:30:00Z", end="2026-12-01T00:30:00Z"),
    row(VM + "controller", 30.0), row(VM + "jump", 12.0),
    row("Microsoft.Compute/disks/slot-1-data", 38.0), row("Microsoft.Compute/disks/slot-2-data", 38.0),
    row("Microsoft.Network/natGateways/nat", 32.4), row("Microsoft.Storage/storageAccounts/sa", 0.8),
    row("Microsoft.KeyVault/vaults/kv", 0.03),
    row(VM + "slot-1", 2.0, group="someone-else", pricing="Dynamic", hours=30.0),  # another environment
    row(VM + "slot-1", -10.0, category="Credit"),  # shown apart
    row(VM + "slot-1", 0.5, charge_class="Correction", pricing="Dynamic"),  # corrects October, billed now
    row(VM + "slot-1", 9.0, start="2026-10-05T00:00:00Z", end="2026-10-06T00:00:00Z"),  # October's
]


def csv_of(rows: list[dict[str, str]], columns: list[str] = COLUMNS) -> tuple[list[str], list[dict[str, str]]]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    reader = csv.DictReader(io.StringIO(buffer.getvalue()))
    return list(reader.fieldnames or []), list(reader)


def test_the_environment_s_month_by_line_with_credits_and_corrections_apart() -> None:
    columns, rows = csv_of(BILL)
    bill = read_bill(rows, columns, "spotkit-prod", {"slot-1", "slot-2"}, START, END)
    assert bill.lines["GPU compute"] == pytest.approx(5.0 + 1.25 + 0.0313 + 0.5)
    assert bill.slot_hours == {"slot-1": pytest.approx(80.5), "slot-2": 20.0}
    assert bill.lines["controller and jump hosts"] == 42.0 and bill.lines["disks"] == 76.0
    assert bill.lines["NAT gateway"] == 32.4 and bill.lines["storage"] == 0.8 and bill.lines["other"] == 0.03
    assert bill.apart == {"Credit": -10.0} and bill.corrections_usd == 0.5
    assert (bill.other_environments, bill.outside_month) == (1, 1)
    assert bill.version == "1.1+"


def test_the_estimate_against_the_bill_explains_the_gpu_difference() -> None:
    usage = [UsageRecord("slot-1", "j", "s", "transcribe", 50 * 3600.0, 0, 0, "faster-whisper", "large-v3", 0.0, 1.0,
                         "done", gpu_seconds=3600.0)] * 50
    paid = PaidTime(100 * 3600.0, "test", {"slot-1": 80 * 3600.0, "slot-2": 20 * 3600.0})
    report = build_report(ReportInputs("2026-11", totals_of(usage), [], paid,
                                       VmPrices(0.526, 0.0627, "USD", "d", "test"), load_price_book(),
                                       fixed=FixedCosts()))
    columns, rows = csv_of(BILL)
    checked = reconcile(report, read_bill(rows, columns, "spotkit-prod", {"slot-1", "slot-2"}, START, END))
    gpu = next(line for line in checked["lines"] if line["line"] == "GPU compute")
    assert gpu["estimated_usd"] == pytest.approx(100 * 0.0627) and gpu["billed_usd"] == pytest.approx(6.7813)
    assert "billed 100.50 h" in gpu["explanation"] and "100 h" in gpu["explanation"]
    assert checked["credits_and_adjustments_usd"] == {"Credit": -10.0}
    assert checked["difference_usd"] == pytest.approx(checked["billed_usd"] - checked["estimated_usd"], abs=0.01)
    assert [s["slot"] for s in checked["slots"]] == ["slot-1", "slot-2"] and checked["slots"][1]["billed_hours"] == 20
    report["reconciliation"] = checked
    text = markdown(report)
    assert "**Checked against the bill**" in text and "Credit $-10.00" in text and "| GPU compute |" in text


def test_focus_1_0_value_names_are_read_and_an_unknown_version_is_refused() -> None:
    columns, rows = csv_of([row(VM + "slot-1", 1.0, pricing="On-Demand"), row(VM + "jump", 1.0,
                                                                           pricing="Commitment-Based")])
    assert read_bill(rows, columns, "spotkit-prod", {"slot-1"}, START, END).version == "1.0"
    columns, rows = csv_of([row(VM + "slot-1", 1.0, pricing="Reserved-ish")])
    with pytest.raises(FocusError, match="unknown FOCUS version"):
        read_bill(rows, columns, "spotkit-prod", set(), START, END)


@pytest.mark.parametrize("columns, rows, words", [
    ([c for c in COLUMNS if c != "BilledCost"], [row(VM + "a", 1.0)], "lacks the column(s) BilledCost"),
    (COLUMNS, [{**row(VM + "a", 1.0), "BilledCost": "lots"}], "BilledCost 'lots' is not a number"),
    (COLUMNS, [{**row(VM + "a", 1.0), "ChargePeriodStart": "yesterday"}], "is not a date and time"),
])
def test_a_file_that_is_not_a_focus_export_is_one_reason(columns: list[str], rows: list[dict[str, str]],
                                                         words: str) -> None:
    header, parsed = csv_of(rows, columns)
    with pytest.raises(FocusError) as err:
        read_bill(parsed, header, "spotkit-prod", set(), START, END)
    assert words in str(err.value)


def test_a_parquet_export_with_typed_columns_reads_as_its_csv_twin(tmp_path: Path) -> None:
    """Parquet exports carry timestamps, decimals and a Tags map rather than text: the same bill."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    from spotkit.cli.bill_files import read_bill_file

    def typed(r: dict[str, str]) -> dict[str, object]:
        return {**r, "BilledCost": Decimal(r["BilledCost"]), "EffectiveCost": float(r["EffectiveCost"]),
                "ListCost": float(r["ListCost"]),
                "ChargePeriodStart": datetime.fromisoformat(r["ChargePeriodStart"].replace("Z", "+00:00")),
                "ChargePeriodEnd": datetime.fromisoformat(r["ChargePeriodEnd"].replace("Z", "+00:00")).replace(
                    tzinfo=None),  # a naive timestamp is UTC in FOCUS
                "ConsumedQuantity": float(r["ConsumedQuantity"]) if r["ConsumedQuantity"] else None,
                "Tags": [("env", "prod")]}

    table = pa.Table.from_pylist([typed(r) for r in BILL], schema=pa.schema([
        (c, pa.decimal128(18, 6) if c == "BilledCost" else pa.float64() if c in ("EffectiveCost", "ListCost",
         "ConsumedQuantity") else pa.timestamp("us", tz="UTC") if c == "ChargePeriodStart"
         else pa.timestamp("us") if c == "ChargePeriodEnd" else pa.map_(pa.string(), pa.string()) if c == "Tags"
         else pa.string()) for c in COLUMNS]))
    export = tmp_path / "part-0.snappy.parquet"
    pq.write_table(table, export, row_group_size=4)
    columns, rows = csv_of(BILL)
    want = read_bill(rows, columns, "spotkit-prod", {"slot-1", "slot-2"}, START, END)
    got = read_bill_file(export, "spotkit-prod", {"slot-1", "slot-2"}, START, END)
    assert got.lines == pytest.approx(want.lines) and got.slot_hours == pytest.approx(want.slot_hours)
    assert (got.apart, got.rows, got.other_environments, got.version) == (want.apart, want.rows,
                                                                          want.other_environments, want.version)


def test_a_pay_as_you_go_usage_details_export_reconciles_like_focus(tmp_path: Path) -> None:
    """MOSP subscriptions have no FocusCost export: their usage-details CSV (schema 2019-11-01) is
    read as the FOCUS rows it stands for — daily rows, spot told by the meter, hours for VMs."""
    from spotkit.cli.bill_files import read_bill_file

    columns = ["SubscriptionGuid", "ResourceGroup", "ResourceLocation", "UsageDateTime", "MeterCategory",
               "MeterSubCategory", "MeterId", "MeterName", "MeterRegion", "UsageQuantity", "ResourceRate",
               "PreTaxCost", "ConsumedService", "ResourceType", "InstanceId", "Tags", "OfferId", "AdditionalInfo",
               "ServiceInfo1", "ServiceInfo2"]

    def payg(resource: str, cost: float, day: str = "2026-11-10", group: str = "spotkit-prod",
             category: str = "Virtual Machines", meter: str = "NC4as T4 v3 Spot", hours: float = 0.0) -> dict[str, str]:
        return {"SubscriptionGuid": "0000", "ResourceGroup": group, "UsageDateTime": day, "MeterCategory": category,
                "MeterSubCategory": "NCasT4 v3 Series Linux" if category == "Virtual Machines" else "",
                "MeterName": meter, "UsageQuantity": str(hours), "PreTaxCost": str(cost),
                "InstanceId": SUB.format(group=group) + resource, "Tags": ""}

    rows = [payg(VM + "slot-1", 2.5, hours=40.0), payg(VM + "slot-1", 2.5, day="11/11/2026", hours=40.0),
            payg(VM + "slot-2", 1.25, hours=20.0), payg(VM + "controller", 30.0, meter="B2s"),
            payg("Microsoft.Compute/disks/slot-1-data", 38.0, category="Storage", meter="P10 Disks"),
            payg("Microsoft.Network/natGateways/nat", 32.4, category="Virtual Network", meter="Gateway"),
            payg(VM + "slot-1", 2.0, group="someone-else", hours=30.0),  # another environment
            payg(VM + "slot-1", 9.0, day="2026-10-05", hours=100.0)]  # October's
    export = tmp_path / "usage-details.csv"
    with export.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    bill = read_bill_file(export, "spotkit-prod", {"slot-1", "slot-2"}, START, END)
    assert bill.lines == pytest.approx({"GPU compute": 6.25, "controller and jump hosts": 30.0, "disks": 38.0,
                                        "NAT gateway": 32.4})
    assert bill.slot_hours == pytest.approx({"slot-1": 80.0, "slot-2": 20.0})
    assert (bill.other_environments, bill.outside_month, bill.spot_rows) == (1, 1, 3)
    assert bill.version.startswith("pay-as-you-go usage details")

    broken = tmp_path / "no-dates.csv"
    broken.write_text("PreTaxCost,InstanceId\n1,x\n")
    with pytest.raises(SpotkitError, match="lacks the column"):
        read_bill_file(broken, "g", set(), START, END)
    bad_day = tmp_path / "bad-day.csv"
    bad_day.write_text("PreTaxCost,UsageDateTime,InstanceId,MeterCategory\n1,yesterday,x,Storage\n")
    with pytest.raises(SpotkitError, match="'yesterday' is not a date"):
        read_bill_file(bad_day, "g", set(), START, END)
