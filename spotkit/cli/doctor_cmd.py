"""``spotkit doctor``: every check that can run live here, one line each with the fix (runtime/doctor.py)."""

from __future__ import annotations

import json
import sys

import click

from runtime.doctor import FAIL, Check, Doctor
from runtime.errors import SpotkitError
from spotkit.cli import friendly_errors, settings_from
from spotkit.cli.tables import print_table
from spotkit.controller.azure_slots import AzureSlots
from spotkit.controller.backends import open_slots
from spotkit.controller.quota_check import azure_quota, spot_quota_check


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The checks as JSON (name, status, detail, fix).")
@click.option("--subscription", envvar="SPOTKIT_SUBSCRIPTION_ID",
              help="On the controller: the subscription whose spot quota the slots need (env SPOTKIT_SUBSCRIPTION_ID).")
@click.option("--resource-group", envvar="SPOTKIT_RESOURCE_GROUP", help="(env SPOTKIT_RESOURCE_GROUP)")
@click.option("--slots", envvar="SPOTKIT_SLOT_VMS", help="The slots' VM names, NAME[:SIZE],… (env SPOTKIT_SLOT_VMS).")
@click.option("--region", envvar="SPOTKIT_REGION", default="eastus", show_default=True, help="(env SPOTKIT_REGION)")
@click.option("--vm-size", envvar="SPOTKIT_VM_SIZE", default="Standard_NC4as_T4_v3", show_default=True,
              help="The size of slots that name none (env SPOTKIT_VM_SIZE).")
@click.pass_context
@friendly_errors
def doctor(ctx: click.Context, as_json: bool, subscription: str | None, resource_group: str | None,
           slots: str | None, region: str, vm_size: str) -> None:
    """Check this machine: queue and store with its identity, Scheduled Events and the VM name, the GPU and
    CUDA libraries, the model on disk, vLLM — and on the controller, the region's spot vCPU quota against
    every slot the stack declares. Exit 0 when nothing failed (skips are fine), 1 otherwise.

    \b
    Examples:
      spotkit doctor                      # the first thing to run after `pulumi up`, on a node or the controller
      spotkit doctor --json | jq '.[] | select(.status == "fail")'
    """
    settings = settings_from(ctx)

    def quota() -> list[Check]:
        if not subscription:
            return spot_quota_check(None)
        try:
            backend = open_slots(settings.home, "azure", subscription, resource_group, slots)
        except SpotkitError as err:
            return [Check("spot quota", FAIL, str(err), "set the controller's slot settings (docs/deploy.md)")]
        assert isinstance(backend, AzureSlots)
        return spot_quota_check(azure_quota(backend, region, vm_size))

    checks = Doctor(settings, extra=[quota]).checks()
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in checks]))
    else:
        print_table("spotkit doctor", ("check", "result", "detail", "fix"),
                    ((c.name, c.status.upper(), c.detail, c.fix) for c in checks))
    if any(c.status == FAIL for c in checks):
        sys.exit(1)
