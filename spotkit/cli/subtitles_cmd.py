"""``spotkit subtitles lint``: how readable an SRT or WebVTT track is, ours or another tool's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from runtime.errors import SpotkitError
from runtime.subtitles.lint import lint, parse_track
from spotkit.cli import EXIT_ERROR, friendly_errors, settings_from


@click.group(name="subtitles")
def subtitles() -> None:
    """Check subtitle tracks against the readability limits (docs/subtitles.md).

    \b
    Examples:
      spotkit subtitles lint talk.srt
      spotkit subtitles lint other-tool.vtt --json | jq '.violations | length'
    """


@subtitles.command(name="lint")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the cues over the limits as JSON.")
@click.pass_context
@friendly_errors
def lint_cmd(ctx: click.Context, file: Path, as_json: bool) -> None:
    """Report every cue of FILE (SRT or WebVTT) over the limits; exit 1 if there is one.

    The limits are the cue_* settings (SPOTKIT_CUE_MAX_LINE_CHARS, …): by default at most 2 lines
    of 42 characters, 5/6 s to 7 s on screen, at most 20 characters a second, 2 frames (83 ms)
    between cues — after Netflix's Timed Text Style Guide.

    \b
    Examples:
      spotkit subtitles lint talk.srt
      spotkit subtitles lint talk.vtt --json
      SPOTKIT_CUE_MAX_LINE_CHARS=37 spotkit subtitles lint bbc.srt    # the BBC's line length
    """
    limits = settings_from(ctx).cue_limits()
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpotkitError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise SpotkitError(f"{file} is a directory; name an .srt or .vtt file") from None
    except UnicodeDecodeError:
        raise SpotkitError(f"{file} is not UTF-8 text; is it a subtitle file?") from None
    except OSError as err:
        raise SpotkitError(f"cannot read {file}: {err.strerror}") from None
    cues = parse_track(text, str(file))
    found = lint(cues, limits)
    if as_json:
        click.echo(json.dumps({"file": str(file), "cues": len(cues), "limits": limits.__dict__,
                               "violations": [v.as_dict() for v in found]}))
    else:
        for violation in found:
            click.echo(violation.describe())
        bad = len({v.cue for v in found})
        click.echo(f"{file}: {len(cues)} cues, {bad} over the limits" + ("" if found else " (all readable)"))
    if found:
        sys.exit(EXIT_ERROR)
