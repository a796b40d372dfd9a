"""``spotkit node ssh|exec|logs|restart`` (one node or ``--all``) and ``node publish-host-keys``.

Parse, call `runtime.remote`, print. Exit status: the remote command's own for one node, 255 when
there is none (not reached, host key refused, timed out, or a setting is wrong: ssh's convention);
for several nodes 0 when all gave 0, else the highest (`runtime.remote.fleet`).
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from runtime.config import Settings
from runtime.errors import ConfigError, RemoteError, SpotkitError
from runtime.fleet_status import heartbeat_max_age
from runtime.redact import redact
from runtime.remote.fleet import NodeResult, RemoteFleet, overall_exit, run_many, run_one
from runtime.remote.hostkeys import DEFAULT_HOST_KEY_FILES, fingerprint, publish_host_keys
from runtime.remote.runner import FabricRunner
from runtime.remote.settings import RemoteSettings, load_remote_settings
from runtime.store import open_store
from runtime.store.base import ObjectStore
from spotkit.cli import friendly_errors, settings_from
from spotkit.cli.params import POSITIVE
from spotkit.cli.tables import print_table

F = TypeVar("F", bound=Callable[..., Any])


def _no_status(fn: F) -> F:
    """A spotkit error before any remote status (a setting, the store) exits 255 too, so a script can
    tell 'the node said 1' from 'spotkit could not ask'."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RemoteError:
            raise
        except SpotkitError as err:
            raise RemoteError(str(err), kind="config" if isinstance(err, ConfigError) else "store") from None

    return wrapper  # type: ignore[return-value]


def _targets(fn: F) -> F:
    """The options every remote verb shares."""
    for option in reversed((
        click.option("--all", "all_nodes", is_flag=True,
                     help="Every node with a heartbeat or an address, in parallel."),
        click.option("--live", is_flag=True, help="With --all: only nodes whose heartbeat is fresh."),
        click.option("--connect-timeout", type=POSITIVE, default=None,
                     help="Seconds for connect, banner and login each (env SPOTKIT_SSH_CONNECT_TIMEOUT, 10)."),
        click.option("--json", "as_json", is_flag=True, help="One JSON object per node (a list with --all)."),
    )):
        fn = option(fn)
    return fn


def _fleet(ctx: click.Context, connect_timeout: float | None) -> tuple[RemoteFleet, ObjectStore, Settings]:
    settings = settings_from(ctx)
    remote = load_remote_settings(connect_timeout=connect_timeout)
    store = open_store(settings.store)
    return RemoteFleet.load(store, remote, settings.home), store, settings


def _run(ctx: click.Context, node: str | None, all_nodes: bool, live: bool, connect_timeout: float | None,
         as_json: bool, command: Callable[[RemoteSettings], str], timeout: Callable[[RemoteSettings], float | None],
         report: Callable[[NodeResult], None] | None = None) -> None:
    """One node streamed raw, or every node prefixed; then the exit status the rule gives. *command* and
    *timeout* are read from the remote settings (the logs and restart commands are settings)."""
    if bool(node) == all_nodes:
        raise click.UsageError("name one NODE, or --all")
    if live and not all_nodes:
        raise click.UsageError("--live goes with --all")
    fleet, store, settings = _fleet(ctx, connect_timeout)
    line, limit = command(fleet.settings), timeout(fleet.settings)
    runner = FabricRunner(fleet.settings.connect_timeout, fleet.jump())
    try:
        if node:
            stream = None if as_json else sys.stdout
            result = run_one(runner, fleet, node, line, limit, stream, None if as_json else sys.stderr)
            results = [result]
            if not as_json:
                _print_result(result, report)
        else:
            nodes = fleet.nodes(store, time.time(), heartbeat_max_age(settings.heartbeat_seconds), live)
            results = run_many(runner, fleet, nodes, line, limit, None if as_json else sys.stdout,
                               None if as_json else sys.stderr,
                               on_result=None if as_json else functools.partial(_print_result, report=report))
    finally:
        runner.close()
    if as_json:
        payload = [r.as_dict() for r in results]
        click.echo(json.dumps(payload if all_nodes else payload[0]))
    elif all_nodes:
        when = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        print_table("exit status per node", ("node", "exit", "seconds", "why"),
                    ((r.node, r.exit_code, f"{r.seconds:.1f}", r.kind) for r in results))
        ok = sum(r.exit_code == 0 for r in results)
        click.echo(f"{ok} of {len(results)} nodes gave 0; exit {overall_exit(results)}, the highest "
                   f"(255: no status from a node) — {when} UTC")
    sys.exit(overall_exit(results))


def _print_result(result: NodeResult, report: Callable[[NodeResult], None] | None) -> None:
    if result.error:
        click.echo(f"error: {redact(result.error)}", err=True)
    elif report is not None:
        report(result)


@click.command("exec")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True, metavar="NODE -- CMD...")
@click.option("--timeout", type=POSITIVE, default=None,
              help="Seconds the command may run (env SPOTKIT_SSH_COMMAND_TIMEOUT, 120).")
@_targets
@click.pass_context
@friendly_errors
@_no_status
def exec_(ctx: click.Context, args: tuple[str, ...], timeout: float | None, all_nodes: bool, live: bool,
          connect_timeout: float | None, as_json: bool) -> None:
    """Run a command on NODE (or on --all nodes at once) and exit with its status.

    Everything after `--` is the command, run by the node's login shell (its words quoted as given).
    One node: its output as it comes, its exit status (255: none, the error says why). --all: each
    line prefixed `node | `, a status per node, and spotkit exits 0 if all gave 0, else the highest.

    \b
    Examples:
      spotkit node exec spotkit-dev-slot-1 -- nvidia-smi
      spotkit node exec --all -- df -h /mnt/spotkit
      spotkit node exec --all --live --json -- systemctl is-active spotkit-agent | jq '.[].stdout'
    """
    node, command = (None, args) if all_nodes else (args[0], args[1:])
    if not command:
        raise click.UsageError("no command: spotkit node exec NODE -- CMD...")
    _run(ctx, node, all_nodes, live, connect_timeout, as_json, lambda _: shlex.join(command),
         lambda remote: timeout if timeout is not None else remote.command_timeout)


@click.command()
@click.argument("node", required=False)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl-C ends); no command timeout.")
@click.option("--lines", "-n", type=click.IntRange(min=0), default=50, show_default=True,
              help="How many of the last lines to show.")
@_targets
@click.pass_context
@friendly_errors
@_no_status
def logs(ctx: click.Context, node: str | None, follow: bool, lines: int, all_nodes: bool, live: bool,
         connect_timeout: float | None, as_json: bool) -> None:
    """The agent's journal on NODE (journalctl -u spotkit-agent; SPOTKIT_LOGS_COMMAND changes it).

    \b
    Examples:
      spotkit node logs spotkit-dev-slot-1 --lines 200
      spotkit node logs spotkit-dev-slot-1 --follow
      spotkit node logs --all --live -n 20
    """
    _run(ctx, node, all_nodes, live, connect_timeout, as_json, lambda remote: remote.logs(lines, follow),
         lambda remote: None if follow else remote.command_timeout)


@click.command()
@click.argument("node", required=False)
@_targets
@click.pass_context
@friendly_errors
@_no_status
def restart(ctx: click.Context, node: str | None, all_nodes: bool, live: bool, connect_timeout: float | None,
            as_json: bool) -> None:
    """Restart the agent on NODE (sudo -n systemctl restart spotkit-agent; SPOTKIT_RESTART_COMMAND
    changes it). A restart drains first: the agent finishes or requeues what it holds.

    \b
    Examples:
      spotkit node restart spotkit-dev-slot-1
      spotkit node restart --all --live
    """

    def said(result: NodeResult) -> None:
        ok = result.exit_code == 0
        click.echo(f"{result.node}: {'restarted' if ok else f'restart failed (exit {result.exit_code})'}",
                   err=not ok)

    _run(ctx, node, all_nodes, live, connect_timeout, as_json, lambda remote: remote.restart_command,
         lambda remote: remote.command_timeout, report=said)


@click.command("ssh")
@click.argument("node")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--connect-timeout", type=POSITIVE, default=None, help="Seconds to connect (env "
              "SPOTKIT_SSH_CONNECT_TIMEOUT, 10).")
@click.option("--print", "print_only", is_flag=True, help="Print the ssh command line instead of running it.")
@click.pass_context
@friendly_errors
@_no_status
def ssh(ctx: click.Context, node: str, command: tuple[str, ...], connect_timeout: float | None,
        print_only: bool) -> None:
    """A shell on NODE: the system ssh, through the jump host, checked against the published host keys.

    \b
    Examples:
      spotkit node ssh spotkit-dev-slot-1
      spotkit node ssh spotkit-dev-slot-1 --print      # the ssh command line, to reuse
    """
    fleet, _, _ = _fleet(ctx, connect_timeout)
    binary = shutil.which("ssh")
    if binary is None and not print_only:
        raise ConfigError("no ssh on PATH; install the OpenSSH client (apt-get install openssh-client)")
    argv = fleet.ssh_argv(node, command, ssh=binary or "ssh")
    if print_only:
        click.echo(shlex.join(argv))
        return
    sys.stdout.flush()
    os.execvp(argv[0], argv)  # the shell replaces spotkit: its terminal, its exit status


@click.command("publish-host-keys")
@click.option("--keys", "pattern", default=DEFAULT_HOST_KEY_FILES, show_default=True,
              help="Glob of the public host key files.")
@click.option("--node", "node_name", default=None, help="Publish as this node (default SPOTKIT_NODE_NAME).")
@click.pass_context
@friendly_errors
def publish_host_keys_(ctx: click.Context, pattern: str, node_name: str | None) -> None:
    """Publish this node's public SSH host keys to the store (the agent unit runs this at every start),
    so `spotkit node ssh|exec` can check them strictly. Public keys only: a private key is refused.

    \b
    Examples:
      spotkit node publish-host-keys
      spotkit node publish-host-keys --keys '/etc/ssh/ssh_host_ed25519_key.pub' --node spotkit-dev-slot-1
    """
    settings = settings_from(ctx)
    record = publish_host_keys(open_store(settings.store), node_name or settings.node_name, pattern)
    shown = ", ".join(f"{key.split()[0]} {fingerprint(key)}" for key in record.keys)
    click.echo(f"{record.node}: published {len(record.keys)} host keys ({shown})")


COMMANDS = (exec_, logs, restart, ssh, publish_host_keys_)
