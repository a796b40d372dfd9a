"""``spotkit agent``: run the node agent in the foreground."""

from __future__ import annotations

import sys

import click

from runtime.engines.factory import open_transcriber, open_translator
from runtime.node import Node
from runtime.queue import open_queue
from runtime.store import open_store
from spotkit.cli import friendly_errors, settings_from


@click.command()
@click.option("--until-idle", is_flag=True, help="Exit 0 once the queue has been empty for a few seconds.")
@click.option("--node-name", help="This node's name (env SPOTKIT_NODE_NAME; default: host name).")
@click.option("--cache-dir", help="Result cache directory (env SPOTKIT_CACHE_DIR).")
@click.option("--batch-size", type=int, help="Messages per pull and segments per engine batch.")
@click.option("--lease-seconds", type=int, help="Queue lease (visibility timeout), renewed while working.")
@click.option("--metrics-port", type=int, help="Serve Prometheus metrics on this port (0: off).")
@click.option("--exit-when-drained", is_flag=True,
              help="Exit 0 once drained for an eviction (default: stay drained, serving metrics).")
@click.pass_context
@friendly_errors
def agent(ctx: click.Context, until_idle: bool, node_name: str | None, cache_dir: str | None,
          batch_size: int | None, lease_seconds: int | None, metrics_port: int | None,
          exit_when_drained: bool) -> None:
    """Pull segments, transcribe them (or answer from the cache), store results.

    SIGTERM or Ctrl-C: drain (stop pulling, requeue what cannot finish within
    sigterm_grace_seconds), then exit 0; a second signal stops at once. On Azure the agent
    also watches Scheduled Events and drains on Preempt/Terminate/Reboot/Redeploy.

    \b
    Examples:
      spotkit agent                          # until stopped
      spotkit agent --until-idle             # drain the queue, then exit
      SPOTKIT_QUEUE=azure-queue://acct/work SPOTKIT_STORE=azure-blob://acct/spotkit spotkit agent
    """
    settings = settings_from(ctx, node_name=node_name, cache_dir=cache_dir, batch_size=batch_size,
                             lease_seconds=lease_seconds, metrics_port=metrics_port)
    node = Node(settings, open_queue(settings.queue, settings.max_deliveries), open_store(settings.store),
                lambda: open_transcriber(settings), until_idle=until_idle,
                exit_when_drained=exit_when_drained, translator=lambda: open_translator(settings))
    node.install_signal_handlers()
    sys.exit(node.run())
