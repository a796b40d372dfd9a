"""``spotkit doctor``: every check that can run live here, one line each with the fix (runtime/doctor.py)."""

from __future__ import annotations

import json
import sys

import click

from runtime.doctor import FAIL, Doctor
from spotkit.cli import friendly_errors, settings_from
from spotkit.cli.tables import print_table


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The checks as JSON (name, status, detail, fix).")
@click.pass_context
@friendly_errors
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check this machine: queue and store with its identity, Scheduled Events and the VM name, the GPU and
    CUDA libraries, the model on disk, vLLM. Exit 0 when nothing failed (skips are fine), 1 otherwise.

    \b
    Examples:
      spotkit doctor                      # the first thing to run after `pulumi up`, on a node or the controller
      spotkit doctor --json | jq '.[] | select(.status == "fail")'
    """
    checks = Doctor(settings_from(ctx)).checks()
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in checks]))
    else:
        print_table("spotkit doctor", ("check", "result", "detail", "fix"),
                    ((c.name, c.status.upper(), c.detail, c.fix) for c in checks))
    if any(c.status == FAIL for c in checks):
        sys.exit(1)
