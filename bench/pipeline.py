"""bench/pipeline: spotkit end to end vs plain faster-whisper on the same file and model.

    python -m bench.pipeline [--media FILE] [--rounds 3]

Baseline: ``WhisperModel(tiny.en, cpu, int8).transcribe(file, vad_filter=True)``, consumed to the
end, model already loaded. spotkit: one local agent (model already loaded, waiting on the queue);
the clock runs from ``submit`` (decode, VAD, FLAC upload, enqueue) until every result is stored.
Rounds alternate the two, and the medians are compared: throughput ratio = baseline time / spotkit
time. Target ≥ 1.0; aim ≥ 1.5 through batching. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from bench.speech import make_speech
from runtime.config import load_settings
from runtime.jobs import job_status, submit
from runtime.local_agents import start_agent, stop_agent
from runtime.media import decode_file
from runtime.queue import open_queue
from runtime.records import read_heartbeats
from runtime.store import open_store
from runtime.work import TaskOptions

WORK = Path(__file__).resolve().parent / ".work"


def baseline_seconds(media: Path, model) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    segments, _ = model.transcribe(str(media), vad_filter=True)
    for _ in segments:
        pass
    return time.perf_counter() - started


def spotkit_seconds(media: Path, home: Path) -> tuple[float, int]:
    if home.exists():
        shutil.rmtree(home)
    settings = load_settings(env={}, home=home, batch_size=8)
    queue, store = open_queue(settings.queue), open_store(settings.store)
    queue.ensure()
    store.ensure()
    agent = start_agent(settings, "bench-1")
    try:
        deadline = time.monotonic() + 120
        while not any(b.node == "bench-1" and b.state == "idle" for b in read_heartbeats(store)):
            if agent.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"agent did not become ready; see {home / 'logs'}")
            time.sleep(0.05)
        started = time.perf_counter()
        report = submit(media, queue, store, TaskOptions(), settings.segment_max_seconds)
        while not job_status(store, report.job).complete:
            if agent.poll() is not None:
                raise SystemExit(f"agent exited; see {home / 'logs'}")
            time.sleep(0.02)
        return time.perf_counter() - started, report.segments
    finally:
        stop_agent(agent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", type=Path, help="audio to use (default: ≥4 min of synthetic speech)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    media = args.media or make_speech(WORK / "speech-250s.flac")
    seconds = decode_file(media).seconds

    from faster_whisper import WhisperModel

    from runtime.models import resolve_model_path

    model = WhisperModel(resolve_model_path("tiny.en", ""), device="cpu", compute_type="int8")
    base, ours, segments = [], [], 0
    for round_ in range(args.rounds):
        base.append(baseline_seconds(media, model))
        took, segments = spotkit_seconds(media, WORK / "home")
        ours.append(took)
        print(f"round {round_ + 1}: faster-whisper {base[-1]:.2f} s, spotkit {ours[-1]:.2f} s", flush=True)
    b, s = statistics.median(base), statistics.median(ours)
    print(f"\naudio: {media} ({seconds:.0f} s, {segments} segments)")
    print(f"{'':34}{'median s':>10}{'audio s / s':>13}")
    print(f"{'faster-whisper transcribe(vad)':34}{b:>10.2f}{seconds / b:>13.1f}")
    print(f"{'spotkit submit → all results':34}{s:>10.2f}{seconds / s:>13.1f}")
    print(f"throughput ratio spotkit / baseline: {b / s:.2f}  (target ≥ 1.0, aim ≥ 1.5)")
    print(json.dumps({"bench": "pipeline", "audio_seconds": round(seconds, 1), "segments": segments,
                      "baseline_s": round(b, 3), "spotkit_s": round(s, 3), "ratio": round(b / s, 3)}))


if __name__ == "__main__":
    main()
