"""`spotkit usage compact`: roll past days' usage up by hand (the controller does it each day)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from runtime.errors import SpotkitError
from runtime.jobs import job_media
from runtime.records import CompactResult, compact_day
from runtime.store import open_store
from spotkit.cli import friendly_errors, settings_from
from spotkit.cli.report_cmd import month_days
from spotkit.cli.tables import print_table


@click.group()
def usage() -> None:
    """The fleet's usage records: compaction into daily rollups (what the report and the budget read).

    \b
    Examples:
      spotkit usage compact --day 2026-11-30
      spotkit usage compact --month 2026-11 --json
    """


@usage.command()
@click.option("--day", default=None, help="One UTC day, YYYY-MM-DD.")
@click.option("--month", default=None, help="Every day of a month, YYYY-MM (today is left alone).")
@click.option("--json", "as_json", is_flag=True, help="Print each day's result as JSON.")
@click.pass_context
@friendly_errors
def compact(ctx: click.Context, day: str | None, month: str | None, as_json: bool) -> None:
    """Merge each node's flushes of a day into one object and write the day's rollup.

    Safe to run at any time and more than once: readers see the same records and the same sums before,
    during and after (docs/reports.md, "Scale"). The controller compacts the day before on each UTC
    day's first round; this is for back-filling and for stores without a controller.

    \b
    Examples:
      spotkit usage compact --day 2026-11-30
      spotkit usage compact --month 2026-11 --json
    """
    if (day is None) == (month is None):
        raise SpotkitError("give exactly one of --day YYYY-MM-DD or --month YYYY-MM")
    if day is not None:
        try:
            datetime.strptime(day, "%Y-%m-%d")
        except ValueError:
            raise SpotkitError(f"--day {day!r}: give a day as YYYY-MM-DD, e.g. 2026-11-30") from None
        days = [day]
    else:
        today = datetime.now(tz=UTC).strftime("%Y-%m-%d")
        days = [d for d in month_days(month or "")[0] if d < today]
    store = open_store(settings_from(ctx).store)
    results: list[CompactResult] = []
    console = Console(stderr=True)
    with Progress(TextColumn("compacting {task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(days[0], total=len(days))
        for n, d in enumerate(days, 1):
            bar.update(task, description=d)
            result = compact_day(store, d, media=lambda jobs: job_media(store, jobs))
            if result is not None:
                results.append(result)
            bar.update(task, completed=n)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in results], indent=2))
        return
    if not results:
        click.echo(f"no usage records on {day or month} in {store.url}", err=True)
        return
    print_table("usage compacted", ("day", "nodes", "records", "objects merged", "rollup rows"),
                [(r.day, r.nodes, r.records, r.merged_objects, r.rows) for r in results])
