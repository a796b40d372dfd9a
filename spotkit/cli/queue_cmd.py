"""``spotkit queue poisoned|requeue|purge``: the poison queue for people on call (docs/runbooks/poison-queue.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from runtime.queue import open_queue
from runtime.queue.replay import list_poisoned, purge, requeue
from runtime.store import open_store
from spotkit.cli import friendly_errors, settings_from


@click.group()
def queue() -> None:
    """The work queue: what was poisoned and why, and putting it back once the cause is fixed.

    \b
    Examples:
      spotkit queue poisoned
      spotkit queue requeue 3f9c… 77ab…
      spotkit queue requeue --all
      spotkit queue purge 3f9c… --yes
    """


@queue.command()
@click.option("--limit", type=click.IntRange(1, 10_000), default=32, show_default=True,
              help="The most messages to show (Azure shows at most 32 at a time).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message, bodies included.")
@click.pass_context
@friendly_errors
def poisoned(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List the poison queue: id, when, deliveries, job and segment, why.

    \b
    Examples:
      spotkit queue poisoned --json | jq -r '.id'
    """
    settings = settings_from(ctx)
    found = list_poisoned(open_queue(settings.queue, settings.max_deliveries), limit)
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in found]))
        return
    click.echo(f"poison queue of {settings.queue}: {len(found)} shown")
    for p in found:  # a list, not a table: ids are copied whole into `requeue`
        entry = p.as_dict()
        at = p.record.poisoned_at if p.record else None
        when = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "—"
        where = f"job {str(entry['job'])[:12]} segment {str(entry['segment'])[:12]}" if entry["job"] else "not work"
        click.echo(f"{p.id}  {when}  {entry['deliveries'] or '—'} deliveries  {where}")
        click.echo(f"    why: {entry['error'] or '(not poisoned by spotkit)'}")
    if not found:
        click.echo("the poison queue is empty")
    else:
        click.echo("fix the cause, then `spotkit queue requeue ID…` or `--all`")


@queue.command("requeue")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Requeue every poisoned message.")
@click.pass_context
@friendly_errors
def requeue_cmd(ctx: click.Context, ids: tuple[str, ...], everything: bool) -> None:
    """Move poisoned messages back to the work queue (fresh delivery count, poison record removed).

    \b
    Examples:
      spotkit queue requeue 3f9c2d7e…
      spotkit queue requeue --all
    """
    settings = settings_from(ctx)
    moved, missing = requeue(open_queue(settings.queue, settings.max_deliveries), open_store(settings.store),
                             ids, everything)
    click.echo(f"requeued {moved} message{'s' if moved != 1 else ''}")
    if missing:
        raise click.ClickException(f"not in the poison queue: {', '.join(missing)}")


@queue.command("purge")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Delete every poisoned message.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
@click.pass_context
@friendly_errors
def purge_cmd(ctx: click.Context, ids: tuple[str, ...], everything: bool, yes: bool) -> None:
    """Delete poisoned messages for good (their segments' poison records stay, for `status`).

    The only command that deletes work from a queue: it asks first unless --yes.

    \b
    Examples:
      spotkit queue purge 3f9c2d7e…
      spotkit queue purge --all --yes
    """
    settings = settings_from(ctx)
    if not ids and not everything:
        raise click.UsageError("name the poisoned message ids to purge (from `spotkit queue poisoned`), or --all")
    what = "every poisoned message" if everything else f"{len(ids)} poisoned message{'s' if len(ids) != 1 else ''}"
    if not yes and not click.confirm(f"delete {what} from the poison queue of {settings.queue} for good?"):
        raise click.ClickException("nothing purged")
    gone, missing = purge(open_queue(settings.queue, settings.max_deliveries), ids, everything)
    click.echo(f"purged {gone} message{'s' if gone != 1 else ''}")
    if missing:
        raise click.ClickException(f"not in the poison queue: {', '.join(missing)}")
