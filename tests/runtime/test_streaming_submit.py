"""The streaming submit: the same segments as the whole file, agents working while it reads, resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from runtime.agent import Agent
from runtime.agent.translate import FanOut, Manifests
from runtime.audio_codec import encode_flac
from runtime.config import Settings
from runtime.engines.simulated import SimulatedTranscriber
from runtime.errors import MediaError, SpotkitError
from runtime.jobs import SubmitProgress, assemble, job_status, load_manifest, submit
from runtime.media import SAMPLE_RATE, Pcm, decode_file
from runtime.queue import open_queue
from runtime.queue.base import WorkQueue
from runtime.records import QUEUED, SEGMENTS, job_key, read_backlog, result_key
from runtime.segmenter import find_speech, pack_spans
from runtime.store import open_store
from runtime.store.base import ObjectStore
from runtime.vad_stream import SpeechStream
from runtime.work import FAILED, READING, TRANSLATE, JobManifest, SegmentRef, TaskOptions, WorkItem, segment_id
from tests.conftest import DATA, DEMO_SAMPLE, REPO


def backends(settings: Settings) -> tuple[WorkQueue, ObjectStore]:
    queue, store = open_queue(settings.queue, settings.max_deliveries, env={}), open_store(settings.store, env={})
    queue.ensure()
    store.ensure()
    return queue, store


def long_speech(seconds: float) -> Pcm:
    """Real speech (tests/data: the one recording, from mp3 and from m4a, whole and cut) between silences
    of 0.1–3 s, cut at *seconds*: long enough to cross faster-whisper's 320 s VAD batches (and many of the
    stream's 32 s ones), with spans that straddle the decoder's chunks."""
    mp3, m4a = decode_file(DATA / "speech.mp3").samples, decode_file(DATA / "speech.m4a").samples
    parts = [mp3, m4a, mp3[: len(mp3) // 2], m4a[len(m4a) // 3:]]
    rng = np.random.default_rng(7)
    out: list[np.ndarray] = []
    while sum(map(len, out)) < seconds * SAMPLE_RATE:
        out += [parts[int(rng.integers(len(parts)))], np.zeros(int(SAMPLE_RATE * rng.uniform(0.1, 3)), np.int16)]
    return Pcm(np.concatenate(out)[:int(seconds * SAMPLE_RATE)])


def repeated_demo(path: Path, times: int) -> Path:
    """The demo sample *times* over, each copy at a slightly different gain so no two segments are equal."""
    demo = decode_file(DEMO_SAMPLE).samples.astype(np.float64)
    pcm = np.concatenate([np.round(demo * (1 - 0.004 * k)).astype(np.int16) for k in range(times)])
    path.write_bytes(encode_flac(Pcm(pcm)))
    return path


def whole_file_segments(path: Path, max_seconds: float) -> list[tuple[str, list[list[int]]]]:
    """The segments the whole-file path (decode all, VAD all, pack) gives: what jobs submitted before had."""
    pcm = decode_file(path)
    return [(segment_id(plan.audio(pcm), TaskOptions()), [list(s) for s in plan.spans])
            for plan in pack_spans(find_speech(pcm, max_seconds), max_seconds)]


def test_the_stream_finds_the_spans_of_the_whole_file_whatever_the_chunks() -> None:
    pcm = long_speech(345)  # past faster-whisper's first 320 s model batch
    expected = find_speech(pcm, 30)
    for chunk in (SAMPLE_RATE + 3, 37 * SAMPLE_RATE):
        stream, found = SpeechStream(30), []
        for start in range(0, len(pcm.samples), chunk):
            found += stream.feed(pcm.samples[start:start + chunk])
        found += stream.finish()
        assert [span for span, _ in found] == expected
        assert all(np.array_equal(audio, pcm.samples[a:b]) for (a, b), audio in found)


@pytest.mark.parametrize("name, seconds", [("speech.mp3", 30), ("speech.m4a", 10), ("long.flac", 30),
                                           ("long.flac", 10)])  # 10 s: spans split at the VAD's longest
def test_streamed_segments_equal_the_whole_file_on_real_speech(settings: Settings, tmp_path: Path,
                                                               name: str, seconds: int) -> None:
    path = DATA / name
    if name == "long.flac":
        path = tmp_path / name
        path.write_bytes(encode_flac(long_speech(345)))
    queue, store = backends(settings)
    report = submit(path, queue, store, TaskOptions(), seconds)
    manifest = load_manifest(store, report.job)
    assert manifest.complete
    assert [(ref.id, ref.spans) for ref in manifest.segments] == whole_file_segments(path, seconds)
    assert queue.approximate_count() == report.segments == report.uploaded


class Ticking:
    """A clock that moves FLUSH_SECONDS on at every reading, so every decoded chunk flushes."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        self.now += 5.0
        return self.now


def test_an_agent_finishes_the_first_segments_before_the_submit_has_read_the_file(
        settings: Settings, tmp_path: Path) -> None:
    media = repeated_demo(tmp_path / "long.flac", 4)
    queue, store = backends(settings)
    engine = SimulatedTranscriber("tiny.en", speed=10_000)
    seen: dict[str, object] = {}

    def agent() -> None:
        Agent(settings, *backends(settings), lambda: engine, until_idle=True).run()

    def progress(event: SubmitProgress) -> None:
        if event.stage != "read" or event.enqueued == 0 or seen:
            return
        [job_json] = store.list("jobs/")
        job = job_json.removeprefix("jobs/").removesuffix(".json")
        thread = threading.Thread(target=agent)
        thread.start()  # runs until the queue is idle: what is enqueued so far
        thread.join(timeout=120)
        manifest = load_manifest(store, job)
        first = manifest.segments[0]
        seen.update(state=manifest.state, read=event.media_seconds, total=event.media_total, job=job,
                    first_done=store.exists(result_key("transcribe", first.id)),
                    status=job_status(store, job), backlog=sum(r.segments for r in read_backlog(store).values()),
                    enqueued=event.enqueued)
        with pytest.raises(SpotkitError, match="still being read"):
            assemble(store, job)

    report = submit(media, queue, store, TaskOptions(), 30, progress, clock=Ticking())
    assert seen["state"] == READING and seen["first_done"]
    assert float(seen["read"]) < float(seen["total"])  # type: ignore[arg-type]  # halfway through the file
    status = seen["status"]
    assert status.reading and status.done >= 1 and not status.transcribed  # type: ignore[attr-defined]
    assert seen["backlog"] == seen["enqueued"]  # the controller sees what is queued so far
    assert report.segments > int(seen["enqueued"])  # type: ignore[call-overload]  # more came after
    agent()
    final = job_status(store, report.job)
    assert final.transcribed and final.state == "complete" and final.total == report.segments
    assert len(assemble(store, report.job)[1]) == report.segments


def test_the_translation_fan_out_reads_a_manifest_still_being_read(settings: Settings) -> None:
    queue, store = backends(settings)
    options = TaskOptions()
    manifest = JobManifest("a" * 24, "film.mp4", "0" * 64, 10.0, 5.0, options, 30, [], ["ja"], "gpt-4o-mini",
                           state=READING)
    store.put(job_key(manifest.job), manifest.to_bytes())
    manifests = Manifests(store)
    assert manifests.get(manifest.job) == manifest
    grown = JobManifest(**{**manifest.__dict__, "segments": [SegmentRef("b" * 64, 0, [[0, 16000]], 1.0),
                                                              SegmentRef("c" * 64, 1, [[32000, 48000]], 1.0)]})
    store.put(job_key(manifest.job), grown.to_bytes())
    found = manifests.get(manifest.job)
    assert found is not None and found.previous("c" * 64) == "b" * 64  # read again: it grew
    FanOut(queue, manifests)(WorkItem(manifest.job, "c" * 64, options, 1.0))
    [message] = queue.receive(8, 30)
    item = WorkItem.decode(message.body)
    assert (item.options.task, item.options.language, item.segment) == (TRANSLATE, "ja", "c" * 64)


def test_a_killed_submit_run_again_uploads_no_segment_twice(settings: Settings, tmp_path: Path) -> None:
    media = repeated_demo(tmp_path / "long.flac", 12)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(SPOTKIT_QUEUE=settings.queue, SPOTKIT_STORE=settings.store, SPOTKIT_HOME=str(settings.home),
               SPOTKIT_TRANSCRIBER="simulated")
    command = [sys.executable, "-m", "spotkit", "submit", str(media), "--json"]
    queue, store = backends(settings)
    expected = [spans for _, spans in whole_file_segments(media, settings.segment_max_seconds)]
    first = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while (len(store.list(SEGMENTS)) < len(expected) // 3 or not store.list("jobs/")) and first.poll() is None:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)  # a crash halfway through the file
    finally:
        first.communicate(timeout=60)
    uploaded_before, queued_before = len(store.list(SEGMENTS)), len(store.list(QUEUED))
    messages_before = queue.approximate_count()
    assert 0 < uploaded_before < len(expected)
    [key] = store.list("jobs/")
    assert JobManifest.from_bytes(store.get(key)).state == READING
    job = key.removeprefix("jobs/").removesuffix(".json")
    cli = [sys.executable, "-m", "spotkit"]
    status = subprocess.run([*cli, "status", job], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "still being read" in status.stdout, status.stderr
    fetch = subprocess.run([*cli, "fetch", job], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert fetch.returncode == 3 and "still being read" in fetch.stderr

    again = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["resumed"] and report["segments"] == len(expected)
    assert report["uploaded"] == len(expected) - uploaded_before  # none of the first run's again
    assert report["enqueued"] == len(expected) - queued_before  # only what the first run did not queue
    assert queue.approximate_count() == messages_before + report["enqueued"]
    manifest = load_manifest(store, report["job"])
    assert manifest.complete and [r.spans for r in manifest.segments] == expected
    assert len(store.list(SEGMENTS)) == len(expected)


def test_media_corrupt_halfway_leaves_a_failed_manifest_that_status_and_fetch_explain(
        settings: Settings, tmp_path: Path) -> None:
    """The demux check passes (the packets are there); decoding loses 200 kB of the middle, which only
    the end shows: the segments before it were queued, and the manifest says why the job stopped."""
    media = repeated_demo(tmp_path / "broken.flac", 8)
    data = bytearray(media.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 200_000] = bytes(200_000)
    media.write_bytes(bytes(data))
    queue, store = backends(settings)
    with pytest.raises(MediaError, match="truncated"):
        submit(media, queue, store, TaskOptions(), 30)
    [key] = store.list("jobs/")
    manifest = JobManifest.from_bytes(store.get(key))
    assert manifest.state == FAILED and "truncated" in manifest.error
    assert 0 < queue.approximate_count() == len(manifest.segments)
    status = job_status(store, manifest.job)
    assert status.state == FAILED and not status.transcribed and "truncated" in status.error
    with pytest.raises(SpotkitError, match="submit failed"):
        assemble(store, manifest.job)
