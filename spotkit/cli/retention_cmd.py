"""``spotkit jobs delete``: remove a finished job and the data no other job references; ``spotkit jobs
expire``: apply the gateway keys' media retention now (the controller does it daily)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import click

from runtime.retention import delete_job, expire_media
from runtime.store import open_store
from spotkit.cli import friendly_errors, settings_from


@click.group()
def jobs() -> None:
    """Manage submitted jobs (submit, status and fetch are top-level commands).

    \b
    Examples:
      spotkit jobs delete 3f2a9c0d1e2b3c4d5e6f7a8b
      spotkit jobs expire --dry-run
    """


@jobs.command("delete")
@click.argument("job")
@click.option("--json", "as_json", is_flag=True, help="Print what was deleted as JSON.")
@click.pass_context
@friendly_errors
def delete(ctx: click.Context, job: str, as_json: bool) -> None:
    """Delete finished JOB: its manifest, and its segments' audio and results unless another job
    references them (node disks' result caches are not touched: docs/gateway.md).

    \b
    Examples:
      spotkit jobs delete 3f2a9c0d1e2b3c4d5e6f7a8b
      spotkit jobs delete "$JOB" --json
    """
    deleted = delete_job(open_store(settings_from(ctx).store), job)
    if as_json:
        click.echo(json.dumps({"job": deleted.job, "segments_deleted": deleted.segments_deleted,
                               "segments_kept": deleted.segments_kept}))
        return
    click.echo(f"job {job} deleted: {deleted.segments_deleted} segments removed, {deleted.segments_kept} kept "
               "(another job uses them)")


@jobs.command("expire")
@click.option("--dry-run", is_flag=True, help="Say which jobs' audio would go; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one object per expired job as JSON lines.")
@click.pass_context
@friendly_errors
def expire(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Delete the segment audio of finished jobs past their keys' media retention (`spotkit keys
    retention`), keeping transcripts and translations; the controller runs this once a day.

    \b
    Examples:
      spotkit jobs expire --dry-run
      spotkit jobs expire --json | jq -r .job
    """
    expired = expire_media(open_store(settings_from(ctx).store), time.time(), dry_run=dry_run)
    for record in expired:
        if as_json:
            click.echo(json.dumps(asdict(record)))
        else:
            verb = "would delete" if dry_run else "deleted"
            click.echo(f"job {record.job}: {verb} {record.segments_deleted} segments' audio "
                       f"({record.segments_kept} kept for other jobs), keys {', '.join(record.key_ids)}")
    if not as_json:
        click.echo(f"{len(expired)} jobs past their media retention{' (dry run)' if dry_run else ''}", err=True)
