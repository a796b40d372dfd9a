"""``spotkit jobs delete``: remove a finished job and the data no other job references."""

from __future__ import annotations

import json

import click

from runtime.retention import delete_job
from runtime.store import open_store
from spotkit.cli import friendly_errors, settings_from


@click.group()
def jobs() -> None:
    """Manage submitted jobs (submit, status and fetch are top-level commands).

    \b
    Examples:
      spotkit jobs delete 3f2a9c0d1e2b3c4d5e6f7a8b
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
