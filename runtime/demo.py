"""The embedded end-to-end run behind ``make demo``: no cloud account, everything on this machine.

SQLite queue + local-disk store under a fresh directory, a shipped sample (speech with long
silences), a local fleet of two agents playing spot VMs against a local metadata service, a
``Preempt`` for one of them mid-run (it drains, requeues, acknowledges, and is deallocated), a
progress bar, the transcript, a summary — then the same file again, to show that nothing is
transcribed twice.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from runtime.config import Settings, load_settings
from runtime.engines.revision import transcriber_revision
from runtime.errors import SpotkitError
from runtime.fleet.local_fleet import Fleet
from runtime.formats import render
from runtime.jobs import SubmitReport, assemble, job_status, submit
from runtime.oncall import list_evictions
from runtime.queue import open_queue
from runtime.records import read_usage
from runtime.samples import demo_sample
from runtime.store import open_store
from runtime.subtitles.split import readable, removed_silences
from runtime.work import TaskOptions


@dataclass(frozen=True)
class PassResult:
    report: SubmitReport
    transcript: str
    wall_seconds: float
    outcomes: dict[str, int]
    by_node: dict[str, int]
    evictions: list[dict[str, Any]]


def _run_pass(settings: Settings, media: Path, nodes: list[str], console: Console,
              evict: tuple[str, float] | None = None) -> PassResult:
    """Submit *media*, run a local fleet until the queue is empty; optionally Preempt one node
    (with that many seconds of notice) once the first results are in."""
    queue, store = open_queue(settings.queue), open_store(settings.store)
    queue.ensure()
    store.ensure()
    pass_started = time.time()
    options = TaskOptions(model=settings.model, word_timestamps=settings.word_timestamps,
                          revision=transcriber_revision(settings, store))
    report = submit(media, queue, store, options, settings.segment_max_seconds)
    started = time.monotonic()
    fleet = Fleet(settings, nodes).up()
    evicted = False
    try:
        with Progress(TextColumn("[bold]transcribing"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} segments"), TimeElapsedColumn(),
                      console=console) as bar:
            task = bar.add_task("segments", total=report.segments)
            while True:
                status = job_status(store, report.job)
                bar.update(task, completed=status.done)
                if status.finished and queue.approximate_count() == 0:
                    break
                if evict and not evicted and status.done >= 2:
                    fleet.evict(evict[0], "Preempt", evict[1])
                    evicted = True
                    console.print(f"[yellow]Azure-style Preempt for {evict[0]} with {evict[1]:.0f} s of "
                                  "notice: less than its batch in flight needs")
                if all(n.state != "running" for n in fleet.nodes.values()):
                    raise SpotkitError(f"every agent stopped; see the logs in {settings.home / 'logs'}")
                time.sleep(0.1)
        wall = time.monotonic() - started
    finally:
        fleet.down()
    if not status.complete:
        raise SpotkitError(f"job {report.job} did not complete: {status.as_dict()}")
    manifest, cues = assemble(store, report.job)
    if settings.cue_style == "readable":  # the SRT as `spotkit fetch` writes it
        cues = readable(cues, removed_silences(manifest), settings.cue_limits())
    outcomes: dict[str, int] = {}
    by_node: dict[str, int] = {}
    for record in read_usage(store):
        if record.job == report.job and record.started_at >= pass_started and record.outcome != "requeued":
            outcomes[record.outcome] = outcomes.get(record.outcome, 0) + 1
            by_node[record.node] = by_node.get(record.node, 0) + 1
    # Spot evictions only: the SIGTERM drains of the final shutdown are recorded too.
    evictions = [e for e in list_evictions(store) if e["seen_at"] >= pass_started and e["origin"] == "imds"]
    return PassResult(report, render(cues, "srt"), wall, outcomes, by_node, evictions)


@dataclass(frozen=True)
class DemoOutcome:
    first: PassResult
    second: PassResult

    @property
    def ok(self) -> bool:
        """Same job id, nothing transcribed twice, byte-identical transcript."""
        return (self.second.report.job == self.first.report.job
                and self.second.outcomes.get("done", 0) == 0
                and self.second.transcript == self.first.transcript)


def run_demo(home: Path, media: Path | None = None, nodes: int = 2,
             console: Console | None = None) -> DemoOutcome:
    console = console or Console()
    media = media or demo_sample()
    if home.exists():
        shutil.rmtree(home)
    # Short segments and small batches: the sample spreads over both agents, and the eviction
    # lands in the middle of the work.
    settings = load_settings(env={}, home=home, segment_max_seconds=5, batch_size=2,
                             safety_margin_seconds=1.0, imds_poll_seconds=0.5)
    console.rule("spotkit demo — embedded queue (SQLite), local store, local agents")
    console.print(f"state in {home}\nmedia: {media}")
    names = [f"local-{i + 1}" for i in range(nodes)]
    first = _run_pass(settings, media, names, console, evict=(names[0], 1.0) if nodes > 1 else None)
    for e in first.evictions:
        console.print(f"[yellow]{e['node']} drained in {e['drain_seconds']:.1f} s after the notice: "
                      f"{e['requeued']} segments requeued to the other node, {e['finished']} finished, "
                      f"{e['wasted_gpu_seconds']:.1f} engine-seconds wasted, event acknowledged: "
                      f"{'yes' if e['will_acknowledge'] else 'no'}; then the VM was deallocated")
    console.print(f"\n[bold]job {first.report.job}[/bold] — transcript (SRT):\n")
    console.print(first.transcript, markup=False, highlight=False, soft_wrap=True)

    console.print("[bold]Submitting the same file again[/bold] (same job id, answers from the cache)…")
    second = _run_pass(settings, media, names[:1], console)
    identical = second.transcript == first.transcript
    table = Table(title="summary")
    table.add_column("")
    table.add_column("first pass", justify="right")
    table.add_column("same file again", justify="right")
    r = first.report
    rows = [
        ("job id", r.job[:12] + "…", "same" if second.report.job == r.job else second.report.job),
        ("segments", str(r.segments), str(second.report.segments)),
        ("audio / speech s", f"{r.duration_seconds:.1f} / {r.speech_seconds:.1f}", "same"),
        ("silence never transcribed", f"{r.silence_share:.0%}", f"{second.report.silence_share:.0%}"),
        ("transcribed / cache hits", _hits(first), _hits(second)),
        ("segments per node", _fmt(first.by_node), _fmt(second.by_node)),
        ("evictions (requeued)", _fmt_evictions(first.evictions), _fmt_evictions(second.evictions)),
        ("wall seconds", f"{first.wall_seconds:.1f}", f"{second.wall_seconds:.1f}"),
        ("audio s per wall s", f"{r.duration_seconds / first.wall_seconds:.1f}",
         f"{r.duration_seconds / second.wall_seconds:.1f}"),
        ("identical transcript", "", "yes" if identical else "NO"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return DemoOutcome(first, second)


def _hits(result: PassResult) -> str:
    return f"{result.outcomes.get('done', 0)} / {result.outcomes.get('cache-hit', 0)}"


def _fmt_evictions(evictions: list[dict[str, Any]]) -> str:
    return ", ".join(f"{e['node']} ({e['requeued']})" for e in evictions) or "-"


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "-"
