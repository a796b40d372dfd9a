"""``spotkit demo``: the whole pipeline on this machine, no cloud account."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runtime.demo import run_demo
from spotkit.cli import friendly_errors


@click.command()
@click.option("--home", "demo_home", type=click.Path(path_type=Path), default=Path(".spotkit-demo"),
              show_default=True, help="Scratch state directory (emptied first).")
@click.option("--media", type=click.Path(exists=True, path_type=Path),
              help="Your own file instead of the sample.")
@click.option("--nodes", type=click.IntRange(1, 8), default=2, show_default=True, help="Local agents.")
@friendly_errors
def demo(demo_home: Path, media: Path | None, nodes: int) -> None:
    """Submit a sample with long silences, run local agents, print the transcript and a summary.

    \b
    Examples:
      spotkit demo
      spotkit demo --media my-recording.mp3 --nodes 1
    """
    sys.exit(0 if run_demo(demo_home.resolve(), media, nodes).ok else 1)
