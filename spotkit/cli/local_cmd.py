"""``spotkit local up|evict|kill|status|down``: rehearse evictions on this machine."""

from __future__ import annotations

import json

import click

from runtime.fleet import supervisor
from spotkit.cli import friendly_errors, settings_from
from spotkit.cli.params import NON_NEGATIVE
from spotkit.cli.tables import print_table


@click.group()
def local() -> None:
    """A local fleet: N agents playing spot VMs against a local metadata service.

    \b
    Examples:
      spotkit local up --nodes 3
      spotkit submit talk.mp3
      spotkit local evict local-2 --notice 10     # a Preempt with 10 s of notice
      spotkit local kill local-3                  # no notice at all
      spotkit local status
      spotkit local down
    """


@local.command()
@click.option("--nodes", type=click.IntRange(1, 16), default=2, show_default=True)
@click.option("--restart-after", type=NON_NEGATIVE, help="Bring an evicted node back after this many seconds.")
@click.pass_context
@friendly_errors
def up(ctx: click.Context, nodes: int, restart_after: float | None) -> None:
    """Start the metadata service and N agents in the background.

    \b
    Examples:
      spotkit local up --nodes 3 --restart-after 20
    """
    state = supervisor.start(settings_from(ctx), nodes, restart_after)
    click.echo(f"local fleet up: {', '.join(state['nodes'])} (metadata service {state['url']})")


@local.command()
@click.argument("node")
@click.option("--type", "event_type", type=click.Choice(["Preempt", "Terminate", "Reboot", "Redeploy",
                                                          "Freeze"]), default="Preempt", show_default=True)
@click.option("--notice", type=NON_NEGATIVE, default=30.0, show_default=True, help="Seconds until NotBefore.")
@click.pass_context
@friendly_errors
def evict(ctx: click.Context, node: str, event_type: str, notice: float) -> None:
    """Schedule an event for NODE, as Azure would.

    \b
    Examples:
      spotkit local evict local-1 --notice 30
      spotkit local evict local-2 --type Freeze --notice 60
    """
    answer = supervisor.request(settings_from(ctx).home, "POST", f"/admin/fleet/evict/{node}",
                                {"type": event_type, "notice_seconds": notice})
    click.echo(answer["event_id"])


@local.command()
@click.argument("node")
@click.pass_context
@friendly_errors
def kill(ctx: click.Context, node: str) -> None:
    """kill -9 NODE's agent: an eviction with no notice.

    \b
    Examples:
      spotkit local kill local-2
    """
    supervisor.request(settings_from(ctx).home, "POST", f"/admin/fleet/kill/{node}")
    click.echo(f"killed {node}")


@local.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Nodes, their state, starts, evictions and kills.

    \b
    Examples:
      spotkit local status --json
    """
    answer = supervisor.request(settings_from(ctx).home, "GET", "/admin/fleet/status")
    if as_json:
        click.echo(json.dumps(answer))
        return
    columns = ("name", "state", "pid", "starts", "evictions", "kills")
    print_table(f"local fleet ({answer['url']})", columns,
                ([node[k] for k in columns] for node in answer["nodes"]))


@local.command()
@click.pass_context
@friendly_errors
def down(ctx: click.Context) -> None:
    """Drain and stop every agent, then the metadata service.

    \b
    Examples:
      spotkit local down
    """
    supervisor.stop(settings_from(ctx).home)
    click.echo("local fleet down")
