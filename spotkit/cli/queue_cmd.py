"""``spotkit queue poisoned|requeue|purge``: the poison queue for people on call (docs/runbooks/poison-queue.md);
``spotkit queue leases|release``: the leases nodes hold, and a dead node's handed back
(docs/runbooks/stuck-leases.md)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import click

from runtime.config import Settings
from runtime.fleet_status import heartbeat_max_age
from runtime.queue import open_queue
from runtime.queue.held import ALREADY_MOVED, FAILED, RELEASED, NodeLeases, check_releasable, read_held, release, utc
from runtime.queue.replay import list_poisoned, purge, requeue
from runtime.store import open_store
from spotkit.cli import friendly_errors, settings_from
from spotkit.cli.params import POSITIVE
from spotkit.cli.tables import print_table


@click.group()
def queue() -> None:
    """The work queue: what was poisoned and why, and putting it back once the cause is fixed; the
    leases nodes hold, and a dead node's handed back before they run out.

    \b
    Examples:
      spotkit queue poisoned
      spotkit queue requeue 3f9c… 77ab…
      spotkit queue requeue --all
      spotkit queue purge 3f9c… --yes
      spotkit queue leases
      spotkit queue release --node gpu-slot-2
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


STALE_AFTER = click.option("--stale-after", type=POSITIVE, default=None,
                           help="Seconds without a heartbeat before a node counts as gone "
                                "[default: 3 heartbeats, at least 30 s — as `node list` and `status`].")


def _stale_after(settings: Settings, given: float | None) -> float:
    return given if given is not None else heartbeat_max_age(settings.heartbeat_seconds)


def _left(seconds: float) -> str:
    if seconds <= 0:
        return "expired"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@queue.command("leases")
@click.option("--node", "node_name", default=None, help="Only this node (an error if it never sent a heartbeat).")
@STALE_AFTER
@click.option("--json", "as_json", is_flag=True, help="One JSON object per lease, pop receipts included.")
@click.pass_context
@friendly_errors
def leases(ctx: click.Context, node_name: str | None, stale_after: float | None, as_json: bool) -> None:
    """List the leases nodes hold, as their heartbeats publish them: node, state, heartbeat age, message,
    job and segment, when the lease runs out.

    A silent node's leases keep its work invisible until they run out; `spotkit queue release --node N`
    hands them back now. A dead node's list stays as it last published it.

    \b
    Examples:
      spotkit queue leases
      spotkit queue leases --node gpu-slot-2 --json | jq -r '.[].message_id'
      spotkit queue leases --json | jq -r 'map(select(.releasable and (.expired | not))) | .[].node' | sort -u
    """
    settings = settings_from(ctx)
    stale = _stale_after(settings, stale_after)
    now = time.time()
    nodes = read_held(open_store(settings.store), stale, node_name, now)
    if as_json:
        click.echo(json.dumps([row for held in nodes for row in held.rows()]))
        return
    rows = [(held.beat.node, held.state, f"{held.age:.0f}s", lease.message_id, lease.job[:12] or "—",
             lease.segment[:12] or "—", utc(lease.expires_at), _left(lease.expires_at - now))
            for held in nodes for lease in held.beat.leases]
    print_table(f"leases published in heartbeats, as of {utc(now)} (silent: no heartbeat for {stale:.0f} s)",
                ("node", "state", "beat age", "message id", "job", "segment", "expires", "left"), rows)
    for held in nodes:
        if held.unpublished:
            click.echo(f"{held.beat.node}: {held.unpublished} in-flight segments without published leases "
                       f"(spotkit {held.beat.version} does not publish them): back when their leases run out")
    if not rows:
        click.echo(f"{node_name} holds no leases" if node_name else "no node holds a lease")
    for held in nodes:
        if not held.alive and held.beat.leases:
            click.echo(f"{held.beat.node} is {held.state}: hand its work back now with "
                       f"`spotkit queue release --node {held.beat.node}`")


@queue.command("release")
@click.option("--node", "node_name", required=True, help="The node whose leased messages to make visible.")
@click.option("--force", is_flag=True, help="Release even if NODE looks alive (its batch is then done twice).")
@STALE_AFTER
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
@click.pass_context
@friendly_errors
def release_cmd(ctx: click.Context, node_name: str, force: bool, stale_after: float | None, yes: bool) -> None:
    """Make NODE's leased messages visible now, with the pop receipts its heartbeat published.

    For a node that died holding work (kill -9, a VM gone without notice), whose work otherwise waits
    until each lease runs out. A node that looks alive (fresh heartbeat, not stopped or failed) is
    refused unless --force: it would lose its batch mid-way — drain it instead. A message whose receipt
    is no longer current (leased again, finished, or renewed after the last heartbeat) is "already moved".

    \b
    Exit codes:
      0  every lease released or already moved, or the node holds none
      1  an unknown node; a refusal (alive, or a spotkit that does not publish
         its leases); a message the queue failed to release (run it again)

    \b
    Examples:
      spotkit queue release --node gpu-slot-2
      spotkit queue release --node gpu-slot-2 --yes
      spotkit queue release --node gpu-slot-2 --force     # alive but must let go: its batch is redone
    """
    settings = settings_from(ctx)
    [held] = read_held(open_store(settings.store), _stale_after(settings, stale_after), node_name)
    check_releasable(held, force)
    count = len(held.beat.leases)
    if not count:
        click.echo(f"{node_name} holds no leases (heartbeat {held.age:.0f} s ago, {held.state}): nothing to release")
        return
    plural = "s" if count != 1 else ""
    if not yes and not click.confirm(f"make the {count} message{plural} leased by {node_name} visible now? "
                                     f"({_describe(held)})"):
        raise click.ClickException("nothing released")
    outcomes = release(open_queue(settings.queue, settings.max_deliveries), held)
    for done in outcomes:
        why = f": {done.error}" if done.error else ""
        click.echo(f"{done.lease.message_id}  {done.outcome}  segment {done.lease.segment[:12] or '—'}{why}")
    tally = {outcome: sum(d.outcome == outcome for d in outcomes) for outcome in (RELEASED, ALREADY_MOVED, FAILED)}
    click.echo(f"{node_name}: {tally[RELEASED]} released, {tally[ALREADY_MOVED]} already moved, "
               f"{tally[FAILED]} failed (of {count})")
    if tally[ALREADY_MOVED]:
        click.echo("already moved: the published receipt is no longer current — leased again, finished, or "
                   "renewed after the node's last heartbeat (such a message comes back when its lease runs out)")
    if tally[FAILED]:
        raise click.ClickException(f"{tally[FAILED]} message{'s' if tally[FAILED] != 1 else ''} could not be "
                                   "released (the queue failed); run the command again")


def _describe(held: NodeLeases) -> str:
    if held.alive:
        return f"it is ALIVE ({held.beat.state}, heartbeat {held.age:.0f} s ago): its batch will be done twice"
    return f"{held.state}, heartbeat {held.age:.0f} s ago"
