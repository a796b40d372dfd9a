"""``spotkit <command>``: parse, call the package that owns the logic, print.

Exit codes scripts can rely on: 0 success; 1 an error with a one-line reason (bad input, missing
job, backend failure); 2 a usage error; 3 ``fetch`` of a job that is not complete yet.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from runtime import __version__
from runtime.config import Settings, load_settings
from runtime.errors import SpotkitError
from runtime.redact import redact

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR = 1
EXIT_INCOMPLETE = 3


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    base = ctx.find_root().params
    return load_settings(home=base.get("home"), queue=base.get("queue"), store=base.get("store"),
                         **overrides)


def friendly_errors(fn: F) -> F:
    """Turn project errors into one line on stderr and exit code 1. Anything else is a bug: still one
    line (and exit 1) for the user, the traceback only with ``-v``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpotkitError as err:
            click.echo(f"error: {redact(str(err))}", err=True)
            sys.exit(getattr(err, "exit_code", EXIT_ERROR))
        except (click.exceptions.Exit, click.ClickException, KeyboardInterrupt):
            raise
        except Exception as err:  # the last net: no traceback reaches a user
            logging.getLogger("spotkit").info("unexpected error", exc_info=True)
            click.echo(f"error: unexpected {type(err).__name__}: {redact(str(err))} (a spotkit bug; "
                       "run with -v for the traceback and report it)", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper  # type: ignore[return-value]


# Each command's module, imported only when that command runs (or `--help` lists them all): the
# agent's engines, paramiko and the report's pyarrow stay out of `spotkit status`'s start-up.
COMMANDS: dict[str, tuple[str, str]] = {
    "submit": ("jobs_cmd", "submit"), "status": ("jobs_cmd", "status"), "fetch": ("jobs_cmd", "fetch"),
    "agent": ("agent_cmd", "agent"), "demo": ("demo_cmd", "demo"), "local": ("local_cmd", "local"),
    "node": ("node_cmd", "node"), "evictions": ("node_cmd", "evictions"),
    "simulate": ("simulate_cmd", "simulate"), "breakeven": ("breakeven_cmd", "breakeven"),
    "controller": ("controller_cmd", "controller"), "models": ("models_cmd", "models_group"),
    "report": ("report_cmd", "report"), "queue": ("queue_cmd", "queue"), "fleet": ("fleet_cmd", "fleet"),
    "doctor": ("doctor_cmd", "doctor"), "subtitles": ("subtitles_cmd", "subtitles"),
    "usage": ("usage_cmd", "usage"), "serve": ("serve_cmd", "serve"), "keys": ("serve_cmd", "keys"),
    "jobs": ("retention_cmd", "jobs"),
}


class _LazyCommands(click.Group):
    """`main`'s subcommands from COMMANDS, each module imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"spotkit.cli.{module}"), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyCommands,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="spotkit")
@click.option("--home", type=click.Path(), help="State directory for the embedded backends "
              "(default ~/.local/share/spotkit; env SPOTKIT_HOME).")
@click.option("--queue", help="Queue URL: sqlite:///PATH, azure-queue://ACCOUNT/QUEUE or sqs://REGION/QUEUE, "
              "each with optional ?shards=N&pack=K (env SPOTKIT_QUEUE).")
@click.option("--store",
              help="Store URL: file:///PATH, azure-blob://ACCOUNT/CONTAINER or s3://BUCKET[/PREFIX] "
              "(env SPOTKIT_STORE).")
@click.option("-v", "--verbose", count=True, help="Log what the agent does (INFO); -vv adds the engine's "
              "own logs (faster-whisper).")
def main(home: str | None, queue: str | None, store: str | None, verbose: int) -> None:
    """Transcribe media on spot GPUs without losing work to evictions.

    \b
    Examples:
      spotkit demo                          # everything on this machine, no cloud account
      spotkit submit talk.mp4               # prints the job id
      spotkit agent --until-idle            # process the queue, exit when it is empty
      spotkit status JOB --json
      spotkit fetch JOB --format srt > talk.srt
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    for noisy in ("azure", "urllib3"):  # SDK request logs; our own errors say what failed in one line
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.ERROR)
    # paramiko logs a failed handshake at ERROR, traceback and all; `node exec` says it in one line.
    logging.getLogger("paramiko").setLevel(logging.INFO if verbose else logging.CRITICAL)
    # faster-whisper logs every clip it decodes at INFO: only when asked for (-vv).
    logging.getLogger("faster_whisper").setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    _progress_lines(verbose > 0)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the sys.stderr of the moment (click's test runner swaps it per invocation)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _progress_lines(verbose: bool) -> None:
    """The agent's one line per batch and per drain (`spotkit.progress`): shown without -v, short;
    with -v they go with the rest of the log, in its format."""
    progress = logging.getLogger("spotkit.progress")
    progress.setLevel(logging.INFO)
    for handler in [h for h in progress.handlers if isinstance(h, _Stderr)]:
        progress.removeHandler(handler)
    progress.propagate = verbose
    if not verbose:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        progress.addHandler(handler)
