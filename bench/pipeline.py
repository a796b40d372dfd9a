"""bench/pipeline: spotkit end to end vs plain faster-whisper on the same file and model.

    python -m bench.pipeline [--media FILE] [--rounds 3]
    python -m bench.pipeline --word-timestamps [--media FILE] [--rounds 3]

``--word-timestamps`` measures what word timings (readable subtitles are cut on them, and they are
on by default) cost the engine: spotkit's faster-whisper transcriber on the file's segments, batched
as the agent batches them, with and without ``word_timestamps``, rounds alternating, medians.

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


def word_timestamps_cost(media: Path, rounds: int) -> None:
    """Engine seconds for the file's segments without and with word timings (same batches)."""
    from runtime.engines.base import AudioItem
    from runtime.engines.faster_whisper_engine import FasterWhisperTranscriber
    from runtime.segmenter import find_speech, pack_spans
    from runtime.work import segment_id

    pcm = decode_file(media)
    engine = FasterWhisperTranscriber("tiny.en")
    plans = pack_spans(find_speech(pcm, 30.0), 30.0)
    took: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}  # process CPU seconds: steadier on a shared machine
    for round_ in range(rounds):
        for words in (False, True):
            options = TaskOptions(word_timestamps=words)
            items = [AudioItem(segment_id(p.audio(pcm), options), p.audio(pcm), options) for p in plans]
            started, started_cpu = time.perf_counter(), time.process_time()
            for k in range(0, len(items), 8):  # the agent's default batch_size
                engine.transcribe_batch(items[k:k + 8])
            took[words].append(time.perf_counter() - started)
            cpu[words].append(time.process_time() - started_cpu)
        print(f"round {round_ + 1}: without words {took[False][-1]:.2f} s ({cpu[False][-1]:.2f} s CPU), "
              f"with {took[True][-1]:.2f} s ({cpu[True][-1]:.2f} s CPU)", flush=True)
    off, on = statistics.median(took[False]), statistics.median(took[True])
    off_cpu, on_cpu = statistics.median(cpu[False]), statistics.median(cpu[True])
    print(f"\naudio: {media} ({pcm.seconds:.0f} s, {len(plans)} segments); engine median without word "
          f"timestamps {off:.2f} s ({off_cpu:.2f} s CPU), with {on:.2f} s ({on_cpu:.2f} s CPU): "
          f"{on / off - 1:+.0%} wall, {on_cpu / off_cpu - 1:+.0%} CPU")
    print(json.dumps({"bench": "word-timestamps", "audio_seconds": round(pcm.seconds, 1), "segments": len(plans),
                      "without_s": round(off, 3), "with_s": round(on, 3), "without_cpu_s": round(off_cpu, 3),
                      "with_cpu_s": round(on_cpu, 3), "overhead_cpu": round(on_cpu / off_cpu - 1, 3)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", type=Path, help="audio to use (default: ≥4 min of synthetic speech)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--word-timestamps", action="store_true",
                        help="measure the engine cost of word timestamps instead")
    args = parser.parse_args()
    media = args.media or make_speech(WORK / "speech-250s.flac")
    if args.word_timestamps:
        word_timestamps_cost(media, args.rounds)
        return
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
