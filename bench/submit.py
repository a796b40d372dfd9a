"""Peak memory and speed of `spotkit submit` on 10, 60 and 120 minutes of media, against the
whole-file path (decode all, VAD all, then upload and enqueue) measured in the same run.

    python -m bench.submit                 # 10, 60, 120 minutes
    python -m bench.submit --minutes 10 30 # others

The media is generated: distinct espeak-ng sentences between pauses (0.4–4 s) and, now and then, a
long silence (20–90 s: a scene with no dialogue), encoded as AAC in .m4a, 16 kHz mono. Each run is a
fresh process with its own store and queue; its peak RSS is the kernel's (``wait4``'s ru_maxrss).
Both paths must give the same segment ids, or the bench says so and exits 1. Files are cached in
bench/.work/submit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from bench.speech import sentences
from runtime.media import SAMPLE_RATE, decode_file

WORK = Path(__file__).parent / ".work" / "submit"
REPO = Path(__file__).resolve().parents[1]


def _voices(count: int) -> list[np.ndarray]:
    """*count* distinct spoken sentences (espeak-ng), 16 kHz int16, cached."""
    cache = WORK / f"voices-{count}.npz"
    if cache.exists():
        with np.load(cache) as saved:
            return [saved[f"arr_{i}"] for i in range(count)]
    rng = random.Random(11)
    out: list[np.ndarray] = []
    with tempfile.TemporaryDirectory() as work:
        for index, text in enumerate(sentences(count, seed=11)):
            wav = Path(work) / f"{index}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(rng.choice([140, 155, 170])), "-w", str(wav), text],
                           check=True, timeout=60)
            out.append(decode_file(wav).samples)
    WORK.mkdir(parents=True, exist_ok=True)
    np.savez(cache, *out)
    return out


def make_media(minutes: int, seed: int = 3) -> Path:
    """An AAC .m4a of *minutes* of speech and silence, written as it is generated (cached)."""
    path = WORK / f"film-{minutes}min.m4a"
    if path.exists():
        return path
    voices, rng = _voices(120), random.Random(seed)
    total, written = minutes * 60 * SAMPLE_RATE, 0
    WORK.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.m4a")
    with av.open(str(partial), mode="w") as out:
        stream = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        assert isinstance(stream, av.AudioStream)
        while written < total:
            voice = voices[rng.randrange(len(voices))]
            gain = rng.uniform(0.6, 1.0)  # the same sentence twice is not the same audio
            pause = rng.uniform(20, 90) if rng.random() < 0.04 else rng.uniform(0.4, 4.0)
            piece = np.concatenate([np.round(voice * gain).astype(np.int16),
                                    np.zeros(int(pause * SAMPLE_RATE), np.int16)])[:total - written]
            for start in range(0, len(piece), 1024):
                chunk = piece[start:start + 1024].astype(np.float32).reshape(1, -1) / 32768.0
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate, frame.pts = SAMPLE_RATE, written + start
                for packet in stream.encode(frame):
                    out.mux(packet)
            written += len(piece)
        for packet in stream.encode(None):
            out.mux(packet)
    partial.rename(path)
    return path


def whole_file_submit(path: Path, home: Path) -> dict[str, object]:
    """The submit of before streaming, as a baseline: the file's bytes, then all its PCM, then the VAD
    over all of it, then upload, the manifest and the messages."""
    from runtime.audio_codec import encode_flac
    from runtime.config import load_settings
    from runtime.engines.revision import transcriber_revision
    from runtime.media import decode_bytes, read_media
    from runtime.queue import open_queue
    from runtime.records import audio_key, job_key
    from runtime.segmenter import find_speech, pack_spans
    from runtime.store import open_store
    from runtime.work import JobManifest, SegmentRef, TaskOptions, WorkItem, job_id, segment_id

    settings = load_settings(env={}, home=home)
    queue, store = open_queue(settings.queue, settings.max_deliveries, env={}), open_store(settings.store, env={})
    queue.ensure()
    store.ensure()
    options = TaskOptions(model=settings.model, revision=transcriber_revision(settings, store))
    data = read_media(path)
    pcm = decode_bytes(data, name=str(path))
    digest = hashlib.sha256(data).hexdigest()
    job = job_id(digest, options, settings.segment_max_seconds)
    refs = []
    for index, plan in enumerate(pack_spans(find_speech(pcm, settings.segment_max_seconds),
                                            settings.segment_max_seconds)):
        audio = plan.audio(pcm)
        seg = segment_id(audio, options)
        store.put_if_absent(audio_key(seg), encode_flac(audio))
        refs.append(SegmentRef(seg, index, [list(s) for s in plan.spans], round(plan.samples / SAMPLE_RATE, 3)))
    manifest = JobManifest(job, path.name, digest, round(pcm.seconds, 3),
                           round(sum(r.speech_seconds for r in refs), 3), options, settings.segment_max_seconds, refs)
    store.put(job_key(job), manifest.to_bytes())
    for ref in refs:
        queue.send(WorkItem(job, ref.id, options, ref.speech_seconds).encode())
    return {"job": job, "segments": len(refs), "duration_seconds": manifest.duration_seconds}


def _measure(command: list[str], home: Path) -> tuple[dict[str, object], float, float]:
    """(its --json output, peak RSS in MB, wall seconds) of one fresh process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTKIT_") and k not in ("COLUMNS", "LINES")}
    env["SPOTKIT_HOME"] = str(home)
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {err.read().decode()[-2000:]}")
        return json.loads(out.read()), usage.ru_maxrss / 1024, seconds


def _segment_ids(home: Path, job: str) -> list[str]:
    from runtime.records import job_key
    from runtime.store import open_store
    from runtime.work import JobManifest

    store = open_store(f"file://{home / 'store'}", env={})
    return [ref.id for ref in JobManifest.from_bytes(store.get(job_key(job))).segments]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[10, 60, 120])
    parser.add_argument("--whole", nargs=2, metavar=("FILE", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.whole:  # the baseline, run in its own process by the bench
        print(json.dumps(whole_file_submit(Path(args.whole[0]), Path(args.whole[1]))))
        return 0
    rows, streamed_rss, same = [], {}, True
    for minutes in args.minutes:
        media = make_media(minutes)
        for path in ("streaming", "whole-file"):
            with tempfile.TemporaryDirectory() as home:
                command = ([sys.executable, "-m", "spotkit", "submit", str(media), "--json"] if path == "streaming"
                           else [sys.executable, "-m", "bench.submit", "--whole", str(media), home])
                report, rss, seconds = _measure(command, Path(home))
                ids = _segment_ids(Path(home), str(report["job"]))
            if path == "streaming":
                streamed_rss[minutes], streamed_ids = rss, ids
            elif ids != streamed_ids:
                same = False
            hours = minutes / 60
            rows.append((minutes, path, rss, seconds, seconds / hours, report["segments"]))
            print(f"{minutes:>4} min  {path:<10}  peak RSS {rss:7.1f} MB  {seconds:7.1f} s  "
                  f"{seconds / hours:7.1f} s per audio hour  {report['segments']} segments", flush=True)
    print()
    print("| media | path | peak RSS (MB) | wall (s) | s per audio hour | segments |")
    print("| --- | --- | --- | --- | --- | --- |")
    for minutes, path, rss, seconds, per_hour, segments in rows:
        print(f"| {minutes} min | {path} | {rss:.0f} | {seconds:.1f} | {per_hour:.1f} | {segments} |")
    low, high = min(streamed_rss), max(streamed_rss)
    growth = streamed_rss[high] / streamed_rss[low] - 1
    print(f"\nstreaming peak RSS at {high} min: {streamed_rss[high]:.0f} MB (under 300 MB: "
          f"{'yes' if streamed_rss[high] < 300 else 'NO'}); growth {low} -> {high} min: {growth:+.1%} "
          f"(under 20 %: {'yes' if growth < 0.2 else 'NO'})")
    print(f"segment ids of the streaming and whole-file paths equal: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
