"""``spotkit controller once|run``: start and deallocate node slots against the queue."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from policies.budget import Budget
from policies.scaling import ScalingParams
from runtime.config import Settings, settings_env
from runtime.eviction.alerts import Alerter
from runtime.eviction.decision import StormPolicy
from runtime.queue import open_queue
from runtime.records import AuditRecord, read_audit
from runtime.store import open_store
from runtime.urls import api_queue_url
from spotkit.cli import friendly_errors, settings_from
from spotkit.cli.params import NON_NEGATIVE, POSITIVE
from spotkit.cli.tables import print_table
from spotkit.controller.api_path import ApiPath, LocalApiWorkers
from spotkit.controller.azure_slots import AzureSlots
from spotkit.controller.backends import open_slots
from spotkit.controller.compaction import DailyCompactor, media_expiry
from spotkit.controller.eviction_alerts import EvictionAlerts
from spotkit.controller.loop import Controller, ControllerSettings
from spotkit.controller.measure import InputReader

F = TypeVar("F", bound=Callable[..., Any])


def slot_options(fn: F) -> F:
    """The options that choose the slot backend (`spotkit.controller.backends.open_slots`)."""
    for option in reversed([
        click.option("--backend", type=click.Choice(["azure", "local"]),
                     help="Azure VMs (default when SPOTKIT_SUBSCRIPTION_ID is set) or the `spotkit local` fleet."),
        click.option("--subscription", envvar="SPOTKIT_SUBSCRIPTION_ID", help="(env SPOTKIT_SUBSCRIPTION_ID)"),
        click.option("--resource-group", envvar="SPOTKIT_RESOURCE_GROUP", help="(env SPOTKIT_RESOURCE_GROUP)"),
        click.option("--slots", envvar="SPOTKIT_SLOT_VMS",
                     help="Comma-separated slot VMs, NAME or NAME:SIZE; sizes in order of preference "
                          "(the stack writes vmSize's slots first, then fallbackSizes') (env SPOTKIT_SLOT_VMS)."),
    ]):
        fn = option(fn)
    return fn


def _options(fn: F) -> F:
    for option in reversed([
        click.option("--deadline-hours", type=POSITIVE, default=6.0, show_default=True),
        click.option("--vm-size", envvar="SPOTKIT_VM_SIZE", default="Standard_NC4as_T4_v3", show_default=True,
                     help="The slots' VM size, for its spot price (env SPOTKIT_VM_SIZE)."),
        click.option("--region", envvar="SPOTKIT_REGION", default="eastus", show_default=True,
                     help="The slots' region, for its spot price (env SPOTKIT_REGION)."),
        click.option("--prices", type=click.Choice(["live", "snapshot"]), default="live", show_default=True,
                     help="live: the Azure Retail Prices API (the dated snapshot when it cannot answer); "
                          "snapshot: only the dated snapshot."),
        click.option("--api-model", default="whisper-1", show_default=True,
                     help="The metered transcription model the fleet competes with (price book)."),
        click.option("--window-days", type=click.IntRange(1, 90), default=7, show_default=True,
                     help="How far back the fleet's records are measured."),
        click.option("--spot-price-per-hour", type=POSITIVE, default=None,
                     help="Override the price book's spot price (USD/h), for every VM size."),
        click.option("--boot-seconds", type=NON_NEGATIVE, default=None,
                     help="Override the measured boot-to-ready time."),
        click.option("--evictions-per-hour", type=NON_NEGATIVE, default=None,
                     help="Override the measured evictions per node-hour."),
        click.option("--audio-rtf", type=POSITIVE, default=None,
                     help="Override the measured audio seconds per GPU second."),
        click.option("--api-workers", type=click.IntRange(0, 64), envvar="SPOTKIT_API_WORKERS", default=0,
                     show_default=True, help="Most API workers to run for work routed to the metered API; 0: "
                                             "no API path, nothing is routed (env SPOTKIT_API_WORKERS)."),
        click.option("--api-budget-usd", type=NON_NEGATIVE, envvar="SPOTKIT_API_BUDGET_USD", default=None,
                     help="Monthly cap on metered-API spend; alert at 80 %, no routing at 100 % "
                          "(env SPOTKIT_API_BUDGET_USD; default: no cap)."),
        click.option("--budget-override", is_flag=True, help="Route to the API even past the monthly cap."),
        click.option("--min-running", type=click.IntRange(0, 1000), envvar="SPOTKIT_MIN_RUNNING", default=0,
                     show_default=True, help="Slots kept running whatever the queue (env SPOTKIT_MIN_RUNNING)."),
    ]):
        fn = option(fn)
    return slot_options(fn)


def _build(settings: Settings, backend: str | None, subscription: str | None, resource_group: str | None,
           slots: str | None, deadline_hours: float, vm_size: str, region: str, prices: str, api_model: str,
           window_days: int, api_workers: int, api_budget_usd: float | None, budget_override: bool, min_running: int,
           daily: bool = False, **overrides: float | None) -> Controller:
    """The controller the flags describe; *daily*: it also keeps the daily duties, usage compaction and
    media retention (`run` does, in the background; a one-shot `once` does not, since it exits before a
    large day would be done)."""
    slot_backend = open_slots(settings.home, backend, subscription, resource_group, slots)
    max_slots = len(slot_backend.vm_names) if isinstance(slot_backend, AzureSlots) else len(slot_backend.list_slots())
    store = open_store(settings.store)
    reader = InputReader(store, vm_size, region, api_model, live_prices=prices == "live", window_days=window_days,
                         flags=overrides)
    reader.prices()  # a size or region the price source does not know fails now, in one line
    # Boot time, spot price and eviction rate are placeholders here: every round replaces them with its inputs.
    params = ScalingParams(max_slots=max_slots, boot_seconds=0.0, spot_price_per_hour=0.0, evictions_per_hour=0.0,
                           min_running=min_running)
    control = ControllerSettings(scaling=params, deadline_seconds=deadline_hours * 3600)
    api = None
    if api_workers:
        api_url = api_queue_url(settings.queue)
        api_queue = open_queue(api_url, settings.max_deliveries)
        api_queue.ensure()
        workers = LocalApiWorkers(settings.home, {**os.environ, **settings_env(settings)}, api_url)
        api = ApiPath(api_queue, workers, api_workers)
    budget = Budget(math.inf if api_budget_usd is None else api_budget_usd, budget_override)
    alerter = Alerter(settings.alert_webhook, settings.runbook_base_url)
    return Controller(slot_backend, open_queue(settings.queue, settings.max_deliveries), store, control, reader.read,
                      api=api, budget=budget, alerter=alerter, size_price=reader.spot_price_of,
                      eviction_alerts=EvictionAlerts(store, alerter, StormPolicy(
                          settings.eviction_storm_count, settings.eviction_storm_minutes * 60),
                          digest=settings.eviction_alerts == "digest"),
                      daily=[DailyCompactor(store, time.time), media_expiry(store)] if daily else [])


@click.group()
def controller() -> None:
    """The cost controller: decide how many spot slots run, start and deallocate them.

    \b
    Examples:
      spotkit controller once --backend local          # one decision against `spotkit local`
      spotkit controller run --interval 60             # on the controller host (env from cloud-init)
      spotkit controller history                       # each decision and the inputs it stood on
    """


@controller.command()
@_options
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def once(ctx: click.Context, /, as_json: bool, **options: Any) -> None:
    """Observe, decide, act once; print the decision and the actions.

    \b
    Examples:
      spotkit controller once --backend local --json
      spotkit controller once --backend local --prices snapshot --audio-rtf 40   # a what-if
    """
    entry = _build(settings_from(ctx), **options).once()
    if as_json:
        click.echo(json.dumps(entry))
        return
    click.echo(f"desired {entry['desired']} ({entry['routing']}): {entry['reason']}")
    for name, value in entry["inputs"].items():
        click.echo(f"  {name:<27} {value['value']:<10.4g} {value['source']:<10} {value['detail']}")
    even = entry["break_even"]
    click.echo(f"  break-even utilization {even['utilization']:.1%}"
               f"{'' if even['self_host_can_win'] else ' (self-hosting cannot win at these prices)'}")
    spend = entry["budget"]
    cap = "no cap" if spend["cap_usd"] is None else f"of ${spend['cap_usd']:.2f} ({spend['share']:.0%})"
    click.echo(f"  API spend {spend['month']}: ${spend['spent_usd']:.2f} {cap}")
    for action in entry["actions"]:
        click.echo(f"  {action}")


@controller.command()
@_options
@click.option("--interval", type=POSITIVE, default=60.0, show_default=True, help="Seconds between decisions.")
@click.pass_context
@friendly_errors
def run(ctx: click.Context, /, interval: float, **options: Any) -> None:
    """Decide every --interval seconds until stopped (SIGTERM / Ctrl-C).

    \b
    Examples:
      SPOTKIT_SUBSCRIPTION_ID=… SPOTKIT_RESOURCE_GROUP=… SPOTKIT_SLOT_VMS=slot-1,slot-2 spotkit controller run
    """
    import signal

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    click.echo(f"controller running (pid {os.getpid()}), every {interval:.0f} s; audit log in the store")
    _build(settings_from(ctx), daily=True, **options).run(interval, stop)


SOURCE_MARKS = {"measured": "m", "price-book": "b", "flag": "f", "prior": "p"}


@controller.command()
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="A UTC day (default: today).")
@click.option("--last", type=click.IntRange(1, 100_000), default=20, show_default=True,
              help="The most recent decisions to show.")
@click.option("--json", "as_json", is_flag=True, help="Every decision as a JSON line, inputs included.")
@click.pass_context
@friendly_errors
def history(ctx: click.Context, day: datetime | None, last: int, as_json: bool) -> None:
    """The controller's decisions, each with what it saw and the inputs it stood on.

    \b
    Examples:
      spotkit controller history
      spotkit controller history --day 2026-12-01 --last 200
      spotkit controller history --json | jq '.inputs.audio_rtf'
    """
    settings = settings_from(ctx)
    when = (day or datetime.now(tz=UTC)).strftime("%Y-%m-%d")
    entries = sorted(read_audit(open_store(settings.store), when), key=lambda e: e.at)[-last:]
    if as_json:
        for entry in entries:
            click.echo(json.dumps(asdict(entry)))
        return
    if not entries:
        click.echo(f"no controller decisions on {when} (it writes one per round: `spotkit controller run`)")
        return

    def source(entry: AuditRecord, name: str) -> str:
        given = entry.inputs.get(name)
        return f"{given['value']:.4g} {SOURCE_MARKS.get(given['source'], '?')}" if given else "—"

    rows = []
    for e in entries:
        even = e.break_even.get("utilization")
        rows.append((datetime.fromtimestamp(e.at, tz=UTC).strftime("%H:%M:%S"), e.desired, e.routing,
                     e.observed.get("queue_depth", "—"), len(e.observed.get("running", [])),
                     source(e, "audio_rtf"), source(e, "spot_price_per_hour"),
                     "—" if even is None else f"{even:.1%}", e.reason[:32]))
    print_table(f"controller decisions, {when} (UTC)",
                ("at", "want", "routing", "queue", "run", "audio rtf", "spot $/h", "break-even", "reason"), rows)
    click.echo("sources: " + ", ".join(f"{mark} = {name}" for name, mark in SOURCE_MARKS.items())
               + "; `--json` has every input with its detail")
