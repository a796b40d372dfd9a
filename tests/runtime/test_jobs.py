"""submit → (results) → status and assemble, without an engine: results are written by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime.audio_codec import decode_flac
from runtime.errors import MediaError, SpotkitError
from runtime.formats import render
from runtime.jobs import SourceCue, assemble, job_status, load_manifest, submit
from runtime.media import decode_file
from runtime.queue.sqlite_queue import SqliteQueue
from runtime.records import Heartbeat, PoisonRecord, audio_key, dump, heartbeat_key, poison_key, result_key
from runtime.store.file_store import FileStore
from runtime.work import Cue, TaskOptions, TranscriptResult, WorkItem
from tests.conftest import DATA, DEMO_SAMPLE


@pytest.fixture
def backends(tmp_path: Path) -> tuple[SqliteQueue, FileStore]:
    store = FileStore(tmp_path / "store")
    store.ensure()
    return SqliteQueue(tmp_path / "q.db"), store


def test_submit_uploads_flac_segments_and_enqueues_each(backends: tuple[SqliteQueue, FileStore]) -> None:
    queue, store = backends
    stages: list[str] = []
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 10, lambda event: stages.append(event.stage))
    assert {"hash", "check", "read"} <= set(stages)
    manifest = load_manifest(store, report.job)
    assert report.segments == len(manifest.segments) == queue.approximate_count() >= 3
    assert 0.4 < report.silence_share < 0.65
    source = decode_file(DEMO_SAMPLE)
    for ref in manifest.segments:
        audio = decode_flac(store.get(audio_key(ref.id)))
        expected = np.concatenate([source.samples[a:b] for a, b in ref.spans])
        assert np.array_equal(audio.samples, expected)  # only speech, bit-exact
        assert audio.seconds <= 10
    items = [WorkItem.decode(m.body) for m in queue.receive(32, 30)]
    assert {i.segment for i in items} == {r.id for r in manifest.segments}


def test_resubmit_same_job_id_same_segments(backends: tuple[SqliteQueue, FileStore]) -> None:
    queue, store = backends
    first = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    second = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    assert not first.resubmitted
    assert second.job == first.job and second.resubmitted
    assert (first.enqueued, second.enqueued) == (first.segments, 0)  # unfinished and queued: not sent twice
    assert queue.approximate_count() == first.segments
    assert len(store.list("segments/")) == first.segments


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("not audio " * 100), "not a media file"),
    (lambda p: p.write_bytes((DATA / "speech.mp3").read_bytes()[:4000]), "truncated"),
    (lambda p: None, "no such file"),
])
def test_bad_input_enqueues_nothing(backends: tuple[SqliteQueue, FileStore], tmp_path: Path,
                                    make: object, reason: str) -> None:
    queue, store = backends
    path = tmp_path / "input.mp3"
    make(path)  # type: ignore[operator]
    with pytest.raises(MediaError, match=reason):
        submit(path, queue, store, TaskOptions(), 30)
    assert queue.approximate_count() == 0
    assert store.list("") == []


def test_silence_only_is_refused(backends: tuple[SqliteQueue, FileStore], tmp_path: Path) -> None:
    import wave

    with wave.open(str(tmp_path / "quiet.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 16000 * 5)
    queue, store = backends
    with pytest.raises(MediaError, match="no speech"):
        submit(tmp_path / "quiet.wav", queue, store, TaskOptions(), 30)
    assert queue.approximate_count() == 0


def test_status_and_assemble_in_source_time(backends: tuple[SqliteQueue, FileStore]) -> None:
    queue, store = backends
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 10)
    manifest = load_manifest(store, report.job)
    first, second, *rest = manifest.segments
    store.put(result_key("transcribe", first.id), TranscriptResult(
        first.id, "tiny.en", "test", "en", [Cue(0.0, 1.0, "hello"), Cue(1.0, 2.0, "world")]).to_bytes())
    store.put(heartbeat_key("n1"), dump(Heartbeat("n1", "working", "0", 1000.0, [second.id])))
    store.put(poison_key(rest[0].id), dump(PoisonRecord(rest[0].id, report.job, "segment audio is corrupt",
                                                        1000.0, "n1")))
    status = job_status(store, report.job, now=1001.0)
    assert (status.done, status.in_flight, len(status.poisoned)) == (1, 1, 1)
    assert status.queued == len(manifest.segments) - 3
    assert status.poisoned[0]["reason"] == "segment audio is corrupt"
    assert job_status(store, report.job, now=5000.0).in_flight == 0  # stale heartbeat
    with pytest.raises(SpotkitError, match="not complete"):
        assemble(store, report.job)
    for ref in manifest.segments[1:]:
        store.put(result_key("transcribe", ref.id), TranscriptResult(
            ref.id, "tiny.en", "test", "en", [Cue(0.5, 1.5, f"seg {ref.index}")]).to_bytes())
    _, cues = assemble(store, report.job)
    start = first.spans[0][0] / 16000
    assert cues[0] == SourceCue(round(start, 3), round(start + 1.0, 3), "hello")
    assert [c.start for c in cues] == sorted(c.start for c in cues)
    assert len(cues) == len(manifest.segments) + 1


def test_unknown_job() -> None:
    store = FileStore(Path("/nonexistent-spotkit-store"))
    with pytest.raises(SpotkitError, match="no job"):
        load_manifest(store, "deadbeefdeadbeefdeadbeef")


def test_render_formats() -> None:
    cues = [SourceCue(1.5, 3.25, "Hello there."), SourceCue(3661.0, 3662.5, "Later.")]
    assert render(cues, "srt") == ("1\n00:00:01,500 --> 00:00:03,250\nHello there.\n\n"
                                   "2\n01:01:01,000 --> 01:01:02,500\nLater.\n")
    assert render(cues, "vtt").startswith("WEBVTT\n\n00:00:01.500 --> 00:00:03.250\nHello there.\n")
    assert render(cues, "txt") == "Hello there.\nLater.\n"
    assert json.loads(render(cues, "json", "j1")) == {
        "job": "j1", "cues": [{"start": 1.5, "end": 3.25, "text": "Hello there."},
                              {"start": 3661.0, "end": 3662.5, "text": "Later."}]}
