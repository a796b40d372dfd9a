"""``spotkit fleet status``: the on-call's one command — every slot and node, the queue, the routing,
the last day's evictions, and the problems first. Reading: `runtime.oncall.observe_fleet`; deciding
what is a problem: `runtime.fleet_status`; here only the options and the drawing."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.text import Text

from runtime.fleet_status import CRITICAL, FleetStatus, NodeStatus, QueueStatus, assemble, heartbeat_max_age
from runtime.oncall import observe_fleet
from runtime.queue import open_queue
from runtime.store import open_store
from runtime.urls import api_queue_url
from spotkit.cli import friendly_errors, settings_from
from spotkit.cli.controller_cmd import slot_options
from spotkit.cli.params import POSITIVE
from spotkit.cli.tables import render_table
from spotkit.controller.backends import open_slots

GOOD_STATES = ("idle", "working", "running")
BUSY_STATES = ("starting", "holding", "draining", "drained", "deallocating", "stopped", "deallocated", "no-slot")


@click.group()
def fleet() -> None:
    """The whole fleet at a glance: slots, nodes, queue, routing, evictions, problems.

    \b
    Examples:
      spotkit fleet status
      spotkit fleet status --watch            # redraw every 2 s until Ctrl-C
      spotkit fleet status --json | jq '.problems'
    """


@fleet.command()
@slot_options
@click.option("--json", "as_json", is_flag=True, help="The status as one JSON object (with --watch: one per line).")
@click.option("--watch", type=POSITIVE, is_flag=False, flag_value=2.0, default=None, metavar="[SECONDS]",
              help="Redraw every SECONDS (default 2) until Ctrl-C.")
@click.option("--stale-after", type=POSITIVE, default=None,
              help="Seconds after which a heartbeat is stale (default: 3 heartbeat intervals, at least 30).")
@click.pass_context
@friendly_errors
def status(ctx: click.Context, as_json: bool, watch: float | None, stale_after: float | None, backend: str | None,
           subscription: str | None, resource_group: str | None, slots: str | None) -> None:
    """Every slot (power, address), its node (agent state, heartbeat age, in-flight segments, versions),
    the queue (visible / leased / poisoned, oldest waiting), API workers and routing, evictions in the
    last 24 h — problems first: stale heartbeats, leases held by a silent node, a poison queue that is
    not empty. Exit 0 whenever the status was shown, problems or not (`--json` lists them).

    \b
    Examples:
      spotkit fleet status --backend local
      spotkit fleet status --watch 5
      spotkit fleet status --json | jq -r '.problems[] | select(.severity == "critical") | .message'
      SPOTKIT_SUBSCRIPTION_ID=… SPOTKIT_RESOURCE_GROUP=… SPOTKIT_SLOT_VMS=slot-1,slot-2 spotkit fleet status
    """
    settings = settings_from(ctx)
    store = open_store(settings.store)
    queue = open_queue(settings.queue, settings.max_deliveries)
    api_queue = open_queue(api_queue_url(settings.queue), settings.max_deliveries)
    slot_backend = open_slots(settings.home, backend, subscription, resource_group, slots)
    threshold = stale_after or heartbeat_max_age(settings.heartbeat_seconds)

    def frame(previous: FleetStatus | None) -> FleetStatus:
        return assemble(observe_fleet(store, queue, slot_backend.list_slots, api_queue), threshold, previous)

    tty = sys.stdout.isatty()
    colour = tty and not os.environ.get("NO_COLOR")
    show: Callable[[FleetStatus], str] = (
        (lambda s: json.dumps(s.as_dict())) if as_json
        else (lambda s: render(s, colour, shutil.get_terminal_size().columns if tty else 240)))
    if watch is None:
        click.echo(show(frame(None)), color=colour)
        return
    previous = None
    try:
        while True:
            current = frame(previous)
            text = show(current)  # drawn before the screen is cleared: no blank flicker
            if tty and not as_json:
                click.clear()
            click.echo(text, color=colour)
            previous = current
            time.sleep(watch)
    except KeyboardInterrupt:
        if not as_json:
            click.echo("")


# -- drawing ------------------------------------------------------------------------------------
def ago(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 172800 else f"{seconds / 86400:.1f} d"


def _count(value: int | None) -> str:
    return "unknown" if value is None else str(value)


def queue_line(label: str, queue: QueueStatus, paint: Callable[..., str], with_poison: bool = True) -> str:
    if queue.total is None:
        return f"{label} {queue.name}: " + paint("not observed", fg="yellow")
    if queue.visible == 0:
        oldest = "none waiting"
    else:
        oldest = f"oldest waiting {ago(queue.oldest_age_seconds) if queue.oldest_known else 'unknown'}"
    poisoned = ""
    if with_poison:
        poisoned = paint(f", {_count(queue.poisoned)} poisoned", fg="red" if queue.poisoned else None)
    return f"{label} {queue.name}: {_count(queue.visible)} visible, {_count(queue.leased)} leased{poisoned} ({oldest})"


def _node_row(node: NodeStatus, with_size: bool, paint: Callable[..., str]) -> list[object]:
    def state(value: str | None, missing: str) -> Text:
        if value is None:
            return Text(missing)
        fg = "green" if value in GOOD_STATES else "yellow" if value in BUSY_STATES else "red"
        return Text.from_ansi(paint(value.replace("no-slot", "no slot"), fg=fg))

    age = ago(node.heartbeat_age_seconds)
    versions = "/".join(v for v in (node.engine, node.model) if v) or "—"
    row: list[object] = [node.node, state(node.power, "unknown")]
    if with_size:
        row.append(node.size or "—")
    row += [node.address or "—", state(node.agent_state, "no heartbeat"),
            Text.from_ansi(paint(age, fg="red")) if node.stale and node.agent_state == "silent" else age,
            Text.from_ansi(paint(str(len(node.in_flight)), fg="red")) if node.stuck else str(len(node.in_flight)),
            ago(node.lease_expires_in_seconds), node.version or "—", versions, node.processed, node.failures,
            "yes" if node.drain_requested else ""]
    return row


def render(status: FleetStatus, colour: bool, width: int) -> str:
    """The status for people: problems first, then the nodes' table, the queues, routing, evictions."""

    def paint(text: str, fg: str | None = None, bold: bool = False) -> str:
        return click.style(text, fg=fg, bold=bold) if colour else text

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=colour, color_system="standard" if colour else None,
                      highlight=False)

    def line(text: str) -> None:
        console.print(Text.from_ansi(text), soft_wrap=True)

    when = datetime.fromtimestamp(status.at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    line(paint(f"fleet status at {when}", bold=True) + f" (heartbeats stale after {status.stale_after_seconds:.0f} s)")
    if not status.problems:
        line(paint("no problems", fg="green"))
    else:
        line(paint(f"{len(status.problems)} problem{'s' if len(status.problems) != 1 else ''}:", fg="red", bold=True))
        for problem in status.problems:
            mark, fg = ("✗", "red") if problem.severity == CRITICAL else ("!", "yellow")
            line(paint(f"  {mark} {problem.message}", fg=fg))
    with_size = any(node.size for node in status.nodes)
    columns = ["node", "slot", *(["size"] if with_size else []), "address", "agent", "beat age", "in flight",
               "lease left", "version", "engine/model", "processed", "failed", "drain"]
    if status.nodes:
        render_table(console, "nodes", columns, (_node_row(node, with_size, paint) for node in status.nodes))
    else:
        line("nodes: no slots and no heartbeats yet")
    line(queue_line("queue", status.queue, paint))
    api = status.api
    if api.queue is not None:
        line(queue_line("api queue", api.queue, paint, with_poison=False))
    if api.routing_at is None:
        line("routing: no controller decision yet")
    else:
        workers = ("api workers unknown" if api.workers_at is None else "no API path" if api.workers is None
                   else f"{api.workers} api worker{'s' if api.workers != 1 else ''}")
        line(f"routing: {api.routing} (decided {ago(status.at - api.routing_at)} ago; {workers} then)")
    count = len(status.evictions_24h)
    detail = ", ".join(f"{node} ×{n}" for node, n in status.evictions_by_node().items())
    line(f"evictions in the last 24 h: {count}"
         + (f" ({detail}; `spotkit evictions list --since 24h`)" if count else ""))
    return "\n".join(row.rstrip() for row in buffer.getvalue().rstrip("\n").splitlines())
