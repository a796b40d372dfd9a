"""``spotkit controller once|run``: start and deallocate node slots against the queue."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import click

from policies.scaling import ScalingParams
from runtime.config import Settings
from runtime.errors import SpotkitError
from runtime.queue import open_queue
from runtime.store import open_store
from spotkit.cli import friendly_errors, settings_from
from spotkit.cli.params import NON_NEGATIVE, POSITIVE
from spotkit.controller.azure_slots import AzureSlots
from spotkit.controller.local_slots import LocalSlots
from spotkit.controller.loop import Controller, ControllerSettings
from spotkit.controller.slots import SlotBackend

F = TypeVar("F", bound=Callable[..., Any])


def _options(fn: F) -> F:
    for option in reversed([
        click.option("--backend", type=click.Choice(["azure", "local"]),
                     help="Azure VMs (default when SPOTKIT_SUBSCRIPTION_ID is set) or the `spotkit local` fleet."),
        click.option("--subscription", envvar="SPOTKIT_SUBSCRIPTION_ID", help="(env SPOTKIT_SUBSCRIPTION_ID)"),
        click.option("--resource-group", envvar="SPOTKIT_RESOURCE_GROUP", help="(env SPOTKIT_RESOURCE_GROUP)"),
        click.option("--slots", envvar="SPOTKIT_SLOT_VMS",
                     help="Comma-separated slot VM names (env SPOTKIT_SLOT_VMS)."),
        click.option("--deadline-hours", type=POSITIVE, default=6.0, show_default=True),
        click.option("--spot-price-per-hour", type=POSITIVE, default=0.0627, show_default=True),
        click.option("--boot-seconds", type=NON_NEGATIVE, default=180.0, show_default=True),
        click.option("--evictions-per-hour", type=NON_NEGATIVE, default=0.05, show_default=True),
        click.option("--audio-rtf", type=POSITIVE, default=50.0, show_default=True,
                     help="Measured audio seconds per GPU second (policies.measured)."),
    ]):
        fn = option(fn)
    return fn


def _build(settings: Settings, backend: str | None, subscription: str | None, resource_group: str | None,
           slots: str | None, deadline_hours: float, spot_price_per_hour: float, boot_seconds: float,
           evictions_per_hour: float, audio_rtf: float) -> Controller:
    backend = backend or ("azure" if subscription else "local")
    names = [s.strip() for s in (slots or "").split(",") if s.strip()]
    slot_backend: SlotBackend
    if backend == "azure":
        if not (subscription and resource_group and names):
            raise SpotkitError("the azure backend needs --subscription, --resource-group and --slots "
                               "(or SPOTKIT_SUBSCRIPTION_ID, SPOTKIT_RESOURCE_GROUP, SPOTKIT_SLOT_VMS)")
        slot_backend = AzureSlots(subscription, resource_group, names)
        max_slots = len(names)
    else:
        slot_backend = LocalSlots(settings.home)
        max_slots = len(slot_backend.list_slots())
    params = ScalingParams(max_slots=max_slots, boot_seconds=boot_seconds, spot_price_per_hour=spot_price_per_hour,
                           evictions_per_hour=evictions_per_hour)
    control = ControllerSettings(scaling=params, deadline_seconds=deadline_hours * 3600, audio_rtf=audio_rtf)
    return Controller(slot_backend, open_queue(settings.queue, settings.max_deliveries), open_store(settings.store),
                      control)


@click.group()
def controller() -> None:
    """The cost controller: decide how many spot slots run, start and deallocate them.

    \b
    Examples:
      spotkit controller once --backend local          # one decision against `spotkit local`
      spotkit controller run --interval 60             # on the controller host (env from cloud-init)
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
    """
    entry = _build(settings_from(ctx), **options).once()
    if as_json:
        click.echo(json.dumps(entry))
        return
    click.echo(f"desired {entry['desired']} ({entry['routing']}): {entry['reason']}")
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
    _build(settings_from(ctx), **options).run(interval, stop)
