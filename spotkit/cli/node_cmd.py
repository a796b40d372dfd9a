"""``spotkit node list|drain|undrain`` and ``spotkit evictions list``: the on-call view. The verbs that
reach a node over SSH (``ssh``, ``exec``, ``logs``, ``restart``) live in `spotkit.cli.node_remote_cmd`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import click

from runtime import oncall
from runtime.fleet_status import heartbeat_max_age
from runtime.schedule import parse_duration
from runtime.store import open_store
from spotkit.cli import friendly_errors, node_remote_cmd, settings_from
from spotkit.cli.params import NON_NEGATIVE
from spotkit.cli.tables import print_table


@click.group()
def node() -> None:
    """See the fleet's nodes; drain one for maintenance; reach them over SSH.

    \b
    Examples:
      spotkit node list
      spotkit node drain gpu-slot-2 --deadline 60 --reason "driver update"
      spotkit node undrain gpu-slot-2
      spotkit node exec --all -- nvidia-smi --query-gpu=memory.used --format=csv
      spotkit node logs gpu-slot-2 --follow
      spotkit node ssh gpu-slot-2
    """


for _command in node_remote_cmd.COMMANDS:
    node.add_command(_command)


@node.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def list_(ctx: click.Context, as_json: bool) -> None:
    """Every node that has sent a heartbeat: state, in-flight segments, counters.

    \b
    Examples:
      spotkit node list --json | jq '.[] | select(.state == "silent")'
    """
    settings = settings_from(ctx)
    rows = oncall.list_nodes(open_store(settings.store),
                             stale_after=heartbeat_max_age(settings.heartbeat_seconds))
    if as_json:
        click.echo(json.dumps(rows))
        return
    columns = ("node", "state", "seconds_since_heartbeat", "in_flight", "processed", "cache_hits",
               "failures", "drain_requested")
    headers = ("node", "state", "beat age s", "in flight", "processed", "cache hits", "failed", "drain")
    print_table("nodes (beat age = seconds since the last heartbeat)", headers,
                ([row[c] for c in columns] for row in rows))


@node.command()
@click.argument("name")
@click.option("--deadline", type=NON_NEGATIVE, default=30.0, show_default=True,
              help="Seconds the node has to finish what is in flight.")
@click.option("--reason", default="operator drain", show_default=True)
@click.option("--force", is_flag=True, help="Ask even if NAME has never sent a heartbeat (a node still booting).")
@click.pass_context
@friendly_errors
def drain(ctx: click.Context, name: str, deadline: float, reason: str, force: bool) -> None:
    """Ask NAME to stop pulling work and requeue what cannot finish by the deadline.

    \b
    Examples:
      spotkit node drain gpu-slot-1 --deadline 0    # requeue everything now
    """
    click.echo(oncall.request_drain(open_store(settings_from(ctx).store), name, deadline, reason, force=force))


@node.command()
@click.argument("name")
@click.pass_context
@friendly_errors
def undrain(ctx: click.Context, name: str) -> None:
    """Withdraw a drain request; NAME resumes pulling.

    \b
    Examples:
      spotkit node undrain gpu-slot-1
    """
    found = oncall.cancel_drain(open_store(settings_from(ctx).store), name)
    click.echo(f"{name}: drain request withdrawn" if found else f"{name}: no drain request")


@click.group()
def evictions() -> None:
    """What evictions happened and what they cost.

    \b
    Examples:
      spotkit evictions list --day 2026-11-28
    """


@evictions.command("list")
@click.option("--day", type=click.DateTime(formats=["%Y-%m-%d"]), help="UTC day, YYYY-MM-DD (default: all).")
@click.option("--since", default=None, help="Only the last DURATION, e.g. 24h, 90m, 7d.")
@click.option("--node", "node_name", default=None, help="Only this node.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def list_evictions(ctx: click.Context, day: datetime | None, since: str | None, node_name: str | None,
                   as_json: bool) -> None:
    """Each eviction: when, node, event, notice, drain time, requeued, finished, wasted GPU seconds.

    \b
    Examples:
      spotkit evictions list --since 24h
      spotkit evictions list --node spotkit-dev-slot-2 --json
    """
    after = time.time() - parse_duration(since, "--since") if since else None
    records = oncall.list_evictions(open_store(settings_from(ctx).store), day.strftime("%Y-%m-%d") if day else None)
    records = [r for r in records if (after is None or r["seen_at"] >= after)
               and (node_name is None or r["node"] == node_name)]
    if as_json:
        click.echo(json.dumps(records))
        return
    rows = []
    for r in records:
        acked = "yes" if r.get("will_acknowledge") or r["acknowledged_at"] else "no"
        when = datetime.fromtimestamp(r["seen_at"], tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows.append((when, r["node"], r["event_type"], f"{r['notice_seconds']:.1f}",
                     f"{r['drain_seconds']:.2f}", r["requeued"], r["finished"],
                     f"{r['wasted_gpu_seconds']:.2f}", acked))
    if records:
        rows.append(("total", f"{len({r['node'] for r in records})} nodes", f"{len(records)} events", "",
                     "", sum(r["requeued"] for r in records), sum(r["finished"] for r in records),
                     f"{sum(r['wasted_gpu_seconds'] for r in records):.2f}", ""))
    columns = ("UTC", "node", "event", "notice", "drain", "requeued", "finished", "wasted", "acked")
    print_table("evictions and drains (seconds; wasted = GPU seconds; --json for ids)", columns, rows)
    if not records:
        on = f" on {day:%Y-%m-%d}" if day else ""
        click.echo(f"no evictions recorded{on} (as of {time.strftime('%Y-%m-%d %H:%M:%S')})")
