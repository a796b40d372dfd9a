"""``spotkit submit | status | fetch``."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from runtime.confidence import describe, job_flags
from runtime.engines.revision import transcriber_revision
from runtime.errors import SpotkitError
from runtime.fleet_status import heartbeat_max_age
from runtime.formats import FORMATS, render
from runtime.jobs import SubmitProgress, assemble, job_status, load_manifest
from runtime.jobs import submit as submit_job
from runtime.queue import open_queue
from runtime.store import open_store
from runtime.subtitles.limits import CUE_STYLES, CueLimits
from runtime.subtitles.lint import lint, parse_track
from runtime.subtitles.split import readable, removed_silences
from runtime.work import TaskOptions
from spotkit.cli import EXIT_ERROR, EXIT_INCOMPLETE, friendly_errors, settings_from
from spotkit.cli.params import POSITIVE
from spotkit.cli.tables import print_table


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class _Bar:
    """The submit's progress on stderr, for people: bytes hashed, then bytes and media time read, and
    segments found and enqueued (agents start on those while the rest is read)."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, event: SubmitProgress) -> None:
        if event.stage == "hash":
            self.bar.update(self._task("hash"), completed=event.bytes_done, total=event.bytes_total)
        elif event.stage == "read":
            media = (f"{_clock(event.media_seconds)}/{_clock(event.media_total)}" if event.media_total
                     else _clock(event.media_seconds))
            self.bar.update(self._task("read"), completed=event.bytes_done, total=event.bytes_total,
                            description=f"reading {media} · {event.segments} segments, {event.enqueued} enqueued")

    def _task(self, name: str) -> TaskID:
        if name not in self.tasks:
            self.tasks[name] = self.bar.add_task("hashing" if name == "hash" else "reading", total=None)
        return self.tasks[name]


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--language", default="", help="Spoken language (ISO code); default: detect, "
              "or English for *.en models.")
@click.option("--segment-max-seconds", type=POSITIVE, help="Longest segment, seconds of speech (default 30).")
@click.option("--word-timestamps/--no-word-timestamps", default=None,
              help="Time every word: what readable SRT/VTT cues are cut on, and in the JSON output "
                   "(default: SPOTKIT_WORD_TIMESTAMPS, else on).")
@click.option("--translate", "translate", default="", help="Target languages, comma-separated (e.g. ja,es); "
              "translated by SPOTKIT_TRANSLATOR's model on the agents.")
@click.option("--priority", type=click.Choice(["high", "normal", "low"]), default=None,
              help="How urgent: high is due in 1 h, normal in 6 h, low in 24 h unless --deadline says "
                   "(default: SPOTKIT_PRIORITY, else normal).")
@click.option("--deadline", default=None, help="When the job is due from now, e.g. 90m, 6h, 2d; the controller "
              "plans capacity (and the metered API) to make it (default: SPOTKIT_DEADLINE, else the priority's).")
@click.option("--json", "as_json", is_flag=True, help="Print the submission as JSON.")
@click.pass_context
@friendly_errors
def submit(ctx: click.Context, file: Path, language: str, segment_max_seconds: float | None,
           word_timestamps: bool | None, translate: str, priority: str | None, deadline: str | None,
           as_json: bool) -> None:
    """Split FILE into speech segments and queue them as they are found; prints the job id.

    FILE is read in a stream (memory stays flat, a film or an hour of audio alike): agents start on
    the first segments while the rest is read. Interrupted (Ctrl-C, a crash), the same command picks
    up where it was: no segment is uploaded or queued twice.

    \b
    Examples:
      spotkit submit interview.mp3
      JOB=$(spotkit submit talk.mp4) && spotkit agent --until-idle && spotkit fetch "$JOB"
      spotkit submit lecture.m4a --translate ja,es
      spotkit submit board-meeting.mp4 --priority high      # due within the hour
      spotkit submit archive-042.flac --deadline 3d          # no hurry: cheapest capacity
    """
    settings = settings_from(ctx, segment_max_seconds=segment_max_seconds)
    queue, store = open_queue(settings.queue, settings.max_deliveries), open_store(settings.store)
    queue.ensure()
    store.ensure()
    options = TaskOptions(model=settings.model, language=language or settings.language,
                          word_timestamps=settings.word_timestamps if word_timestamps is None else word_timestamps,
                          revision=transcriber_revision(settings, store))
    console = Console(stderr=True)
    started = time.monotonic()
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        targets = tuple(t.strip() for t in translate.split(",") if t.strip())
        report = submit_job(file, queue, store, options, settings.segment_max_seconds, _Bar(bar), targets,
                            settings.translator_model, priority or settings.priority,
                            settings.deadline if deadline is None else deadline)
    if as_json:
        click.echo(json.dumps({"job": report.job, "resubmitted": report.resubmitted, "resumed": report.resumed,
                               "segments": report.segments, "duration_seconds": report.duration_seconds,
                               "speech_seconds": report.speech_seconds, "enqueued": report.enqueued,
                               "uploaded": report.uploaded, "seconds": round(time.monotonic() - started, 3)}))
        return
    click.echo(report.job)
    again = " (already submitted: cached results will be reused)" if report.resubmitted else ""
    if report.resumed:
        again = (f" (an interrupted submit picked up: {report.segments - report.uploaded} segments were "
                 "already uploaded)")
    console.print(f"{report.segments} segments, {report.speech_seconds:.1f} s of speech in "
                  f"{report.duration_seconds:.1f} s ({report.silence_share:.0%} silence skipped){again}")


@click.command()
@click.argument("job")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
@friendly_errors
def status(ctx: click.Context, job: str, as_json: bool) -> None:
    """Show how many of JOB's segments are done, in flight, queued or poisoned, and which transcripts
    are probably not what was said (not English for an English-only model, not speech, a decoder loop).

    \b
    Examples:
      spotkit status 3f2a9c...
      spotkit status 3f2a9c... --json | jq .done
    """
    settings = settings_from(ctx)
    store = open_store(settings.store)
    result = job_status(store, job, heartbeat_max_age=heartbeat_max_age(settings.heartbeat_seconds))
    flags = job_flags(store, load_manifest(store, job))
    if as_json:
        click.echo(json.dumps({**result.as_dict(), "flags": [flag.as_dict() for flag in flags]}))
        return
    if result.reading:
        click.echo(f"still being read by `spotkit submit`: {_clock(result.read_seconds)} of the media so far; "
                   "the counts below are of the segments found in it")
    elif result.state == "failed":
        click.echo(f"submit failed: {result.error}")
    print_table(f"job {job} ({result.source})",
                ("segments", "done", "in flight", "waiting", "queued", "poisoned"),
                [(result.total, result.done, result.in_flight, len(result.waiting), result.queued,
                  len(result.poisoned))])
    if result.deadline_at is not None and not result.complete:
        due = datetime.fromtimestamp(result.deadline_at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"due {due} ({result.priority} priority)")
    for entry in result.waiting:
        click.echo(f"segment #{entry['index']} is leased by {entry['node']}, which went silent: back in the "
                   f"queue in {entry['lease_expires_in']:.0f} s")
    for language, count in sorted(result.translated.items()):
        click.echo(f"translated into {language}: {count}/{result.total} segments")
    for poisoned in result.poisoned:
        click.echo(f"poisoned segment #{poisoned['index']}: {poisoned['reason']}")
    for failed in result.translations_poisoned:
        click.echo(f"poisoned translation of segment #{failed['index']} into {failed['language']}: "
                   f"{failed['reason']}")
    for flag in flags:
        click.echo(describe(flag))


def _check_output(output: Path) -> None:
    """Refuse, before any work, a path that cannot be written: a folder, or a file in a missing folder."""
    if output.is_dir():
        raise SpotkitError(f"-o {output} is a directory; give a file path, e.g. -o {output / 'transcript.srt'}")
    if not output.parent.is_dir():
        raise SpotkitError(f"-o {output}: the folder {output.parent} does not exist; create it first")


@click.command()
@click.argument("job")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="srt", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write here instead of stdout.")
@click.option("--lang", default="", help="A translation the job was submitted with (--translate).")
@click.option("--cue-style", type=click.Choice(CUE_STYLES), default=None,
              help="srt/vtt: readable (cues cut to the subtitle limits on word timings) or none (the "
                   "engine's own segments, one cue each) (default: SPOTKIT_CUE_STYLE, else readable).")
@click.option("--check", is_flag=True, help="Also lint the srt/vtt written (as `spotkit subtitles lint`) and "
              "exit 1 if a cue breaks the limits.")
@click.pass_context
@friendly_errors
def fetch(ctx: click.Context, job: str, fmt: str, output: Path | None, lang: str, cue_style: str | None,
          check: bool) -> None:
    """Print JOB's transcript, in source time order. Exit 3 if it is not complete yet.

    SRT and WebVTT come as readable cues: at most 2 lines of 42 characters, 5/6 s to 7 s on screen,
    at most 20 characters a second (the limits are settings: docs/subtitles.md).

    \b
    Examples:
      spotkit fetch 3f2a9c... --format srt > talk.srt
      spotkit fetch 3f2a9c... --format json -o talk.json
      spotkit fetch 3f2a9c... --format srt --lang ja > talk.ja.srt
      spotkit fetch 3f2a9c... --format vtt --check -o talk.vtt
      spotkit fetch 3f2a9c... --format srt --cue-style none   # one cue per engine segment
    """
    if output is not None:
        _check_output(output)
    if check and fmt not in ("srt", "vtt"):
        raise SpotkitError(f"--check lints subtitles: use it with --format srt or vtt, not {fmt}")
    settings = settings_from(ctx)
    store = open_store(settings.store)
    result = job_status(store, job)
    if lang in result.translated and result.transcribed and not result.translated_into(lang):
        failed = sum(1 for e in result.translations_poisoned if e["language"] == lang)
        click.echo(f"error: job {job}'s translation into {lang} is not complete ({result.translated.get(lang, 0)}/"
                   f"{result.total} segments, {failed} poisoned); the transcript is ready: "
                   f"`spotkit fetch {job}`; see `spotkit status {job}`", err=True)
        sys.exit(EXIT_INCOMPLETE)
    if result.reading:
        click.echo(f"error: job {job} is still being read by `spotkit submit` ({result.total} segments found so far, "
                   f"{result.done} done); see `spotkit status {job}`", err=True)
        sys.exit(EXIT_INCOMPLETE)
    if result.state == "failed":
        raise SpotkitError(f"job {job}'s submit failed: {result.error}")
    if not result.transcribed:
        click.echo(f"error: job {job} is not complete ({result.done}/{result.total} segments done, "
                   f"{len(result.poisoned)} poisoned); see `spotkit status {job}`", err=True)
        sys.exit(EXIT_INCOMPLETE)
    manifest, cues = assemble(store, job, lang)
    for flag in job_flags(store, manifest):  # on stderr: the transcript on stdout stays what it is
        click.echo(f"warning: {describe(flag)}", err=True)
    limits = settings.cue_limits()
    if fmt in ("srt", "vtt") and (cue_style or settings.cue_style) == "readable":
        cues = readable(cues, removed_silences(manifest), limits)
    text = render(cues, fmt, job)
    if output:
        try:
            output.write_text(text)
        except OSError as err:
            raise SpotkitError(f"cannot write {output}: {err.strerror}") from None
    else:
        click.echo(text, nl=False)
    if check:
        _report_lint(text, fmt, limits)


def _report_lint(text: str, fmt: str, limits: CueLimits) -> None:
    cues = parse_track(text, fmt)
    found = lint(cues, limits)
    for violation in found:
        click.echo(f"check: {violation.describe()}", err=True)
    click.echo(f"check: {len(cues)} cues, {len(found)} over the limits", err=True)
    if found:
        sys.exit(EXIT_ERROR)
