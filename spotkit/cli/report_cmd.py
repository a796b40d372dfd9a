"""``spotkit report --month YYYY-MM``: the month's fixed-cost report from the fleet's own records."""

from __future__ import annotations

import calendar
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from policies.focus import reconcile
from policies.power import paid_time
from policies.prices import PriceSourceError, load_price_book, load_vm_prices
from policies.recommend import change, recommend
from policies.report import FixedCosts, ReportInputs, build_report, csv_rows, markdown
from policies.report_html import html_page
from runtime.errors import SpotkitError
from runtime.jobs import job_media
from runtime.records import read_audit, read_evictions, read_power_span, read_usage_day
from runtime.store import open_store
from spotkit.cli import friendly_errors, settings_from
from spotkit.cli.bill_files import read_bill_file
from spotkit.cli.params import NON_NEGATIVE


def previous_month(month: str) -> str:
    first = datetime.strptime(month, "%Y-%m")
    return f"{first.year - 1}-12" if first.month == 1 else f"{first.year}-{first.month - 1:02d}"


def month_days(month: str) -> tuple[list[str], float, float]:
    """The month's UTC days and the moments it starts and ends; `SpotkitError` for anything but YYYY-MM."""
    try:
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise SpotkitError(f"--month {month!r}: give a month as YYYY-MM, e.g. 2026-11") from None
    count = calendar.monthrange(first.year, first.month)[1]
    days = [first.replace(day=d).strftime("%Y-%m-%d") for d in range(1, count + 1)]
    end = first.replace(day=count).timestamp() + 86400
    return days, first.timestamp(), end


@click.command()
@click.option("--month", default=None, help="YYYY-MM (default: this month, so far).")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json", "csv"]), default="md",
              show_default=True, help="md for people, html (with the break-even chart) for a browser or a ticket, "
                                      "json for scripts, csv (figure,value) for spreadsheets.")
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Write here instead of stdout.")
@click.option("--vm-size", envvar="SPOTKIT_VM_SIZE", default="Standard_NC4as_T4_v3", show_default=True)
@click.option("--region", envvar="SPOTKIT_REGION", default="eastus", show_default=True)
@click.option("--prices", type=click.Choice(["live", "snapshot"]), default="live", show_default=True,
              help="live: the Azure Retail Prices API (the dated snapshot when it cannot answer).")
@click.option("--api-model", default="whisper-1", show_default=True, help="The metered model compared against.")
@click.option("--slots", type=click.IntRange(0, 1000), default=2, show_default=True,
              help="Slots whose disks bill all month.")
@click.option("--disk-usd-per-slot", type=NON_NEGATIVE, default=38.0, show_default=True)
@click.option("--controller-usd", type=NON_NEGATIVE, default=30.0, show_default=True)
@click.option("--jump-host-usd", type=NON_NEGATIVE, default=12.0, show_default=True)
@click.option("--nat-usd", type=NON_NEGATIVE, default=33.0, show_default=True)
@click.option("--ops-hours", type=NON_NEGATIVE, default=4.0, show_default=True,
              help="Hours people spent running the fleet this month (the engineering tax).")
@click.option("--ops-rate-usd", type=NON_NEGATIVE, default=100.0, show_default=True)
@click.option("--bill", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="An Azure Cost Management FocusCost export (CSV or .csv.gz) to check the estimate against.")
@click.option("--resource-group", envvar="SPOTKIT_RESOURCE_GROUP", default=None,
              help="The environment's resource group: the bill's other rows are left out. Needed with --bill.")
@click.option("--slot-vms", envvar="SPOTKIT_SLOT_VMS", default="",
              help="The slots' VM names (NAME[:SIZE],…), beside those in the power history: their VMs are GPU compute.")
@click.pass_context
@friendly_errors
def report(ctx: click.Context, month: str | None, fmt: str, out: Path | None, vm_size: str, region: str,
           prices: str, api_model: str, slots: int, disk_usd_per_slot: float, controller_usd: float,
           jump_host_usd: float, nat_usd: float, ops_hours: float, ops_rate_usd: float, bill: Path | None,
           resource_group: str | None, slot_vms: str) -> None:
    """What the fleet cost this month, what it did, and what the API would have charged for it.

    \b
    Examples:
      spotkit report                                  # this month so far, Markdown
      spotkit report --month 2026-11 --format json -o november.json
      spotkit report --month 2026-11 --format html -o november.html   # with the break-even chart
      spotkit report --format csv > month.csv          # figure,value rows for a spreadsheet
      spotkit report --ops-hours 12 --ops-rate-usd 120   # your own engineering tax
      spotkit report --month 2026-11 --bill focus-2026-11.csv.gz --resource-group spotkit-prod
    """
    if bill is not None and not resource_group:
        raise SpotkitError("--bill needs --resource-group (or SPOTKIT_RESOURCE_GROUP): the environment's rows")
    settings = settings_from(ctx)
    month = month or datetime.now(tz=UTC).strftime("%Y-%m")
    store = open_store(settings.store)
    fixed = FixedCosts(disk_usd_per_slot, slots, controller_usd, jump_host_usd, nat_usd, 1.0, ops_hours, ops_rate_usd)
    vm_prices = load_vm_prices(vm_size, region, allow_network=prices == "live")
    book = load_price_book()

    def figures_of(month: str) -> dict[str, Any] | None:
        days, start, end = month_days(month)
        usage, media = [], {}
        for day in days:
            totals, known = read_usage_day(store, day)
            usage += totals
            media.update(known)
        if not usage:
            return None
        done = {t.job for t in usage if t.outcome == "done"}
        media.update(job_media(store, done - set(media)))  # jobs of days not rolled up yet
        audit = [a for day in days for a in read_audit(store, day)]
        until = min(end, datetime.now(tz=UTC).timestamp())
        paid = paid_time(read_power_span(store, start, until), audit, start, until)
        return build_report(ReportInputs(
            month, usage, [e for day in days for e in read_evictions(store, day)], paid, vm_prices,
            book, api_model, fixed, media,
            size_prices(set(paid.size_of.values()) if paid else set())))

    size_price_cache: dict[str, float | None] = {}

    def size_prices(sizes: set[str]) -> dict[str, float]:
        """The spot price of each other size the slots ran at, where the price source has one."""
        for size in sizes - {vm_size, ""} - set(size_price_cache):
            try:
                found = load_vm_prices(size, region, allow_network=prices == "live")
                size_price_cache[size] = found.spot_price_per_hour
            except PriceSourceError:
                size_price_cache[size] = None
        return {size: price for size in sizes if (price := size_price_cache.get(size)) is not None}

    figures = figures_of(month)
    if figures is None:
        raise SpotkitError(f"no usage records for {month} in {store.url}: nothing was processed that month "
                           "(check --month and SPOTKIT_STORE)")
    figures["recommendation"] = recommend(figures)
    previous = figures_of(previous_month(month))
    figures["change"] = None if previous is None else change(figures, previous)
    if bill is not None and resource_group:
        _, start, end = month_days(month)
        slot_names = set(figures["paid_node_hours_by_slot"]) | {e.split(":", 1)[0] for e in slot_vms.split(",") if e}
        figures["reconciliation"] = reconcile(figures, read_bill_file(bill, resource_group, slot_names, start, end))
    if fmt == "json":
        text = json.dumps(figures, indent=2) + "\n"
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(("figure", "value"))
        writer.writerows(csv_rows(figures))
        text = buffer.getvalue()
    elif fmt == "html":
        text = html_page(figures)
    else:
        text = markdown(figures)
    if out is None:
        click.echo(text, nl=False)
        return
    if out.is_dir() or not out.parent.is_dir():
        raise SpotkitError(f"-o {out}: give a file in an existing folder")
    out.write_text(text)
    click.echo(f"wrote {out}", err=True)
