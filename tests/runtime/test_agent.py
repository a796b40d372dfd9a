"""The agent in-process, with the real tiny.en engine on CPU and real backends."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.agent import Agent
from runtime.config import Settings
from runtime.engines.base import AudioItem, Transcriber
from runtime.errors import EngineError, SpotkitError
from runtime.formats import render
from runtime.jobs import assemble, job_status, load_manifest, submit
from runtime.queue import open_queue
from runtime.queue.base import WorkQueue
from runtime.queue.sqlite_queue import SqliteQueue
from runtime.records import audio_key, read_heartbeats, read_usage, result_key
from runtime.store import open_store
from runtime.store.base import ObjectStore
from runtime.work import TaskOptions, TranscriptResult, WorkItem
from tests.conftest import DEMO_SAMPLE, FakeClock
from tests.support.azurite import ACCOUNT, Azurite
from tests.support.flaky_store import FlakyStore


def backends(settings: Settings, env: dict[str, str] | None = None) -> tuple[WorkQueue, ObjectStore]:
    queue = open_queue(settings.queue, settings.max_deliveries, env=env or {})
    store = open_store(settings.store, env=env or {})
    queue.ensure()
    store.ensure()
    return queue, store


def run_agent(settings: Settings, engine: Transcriber, env: dict[str, str] | None = None) -> Agent:
    queue, store = backends(settings, env)
    agent = Agent(settings, queue, store, lambda: engine, until_idle=True)
    assert agent.run() == 0
    return agent


class Failing(Transcriber):
    engine, model = "failing", "tiny.en"

    def transcribe_batch(self, items: list[AudioItem]) -> list[TranscriptResult]:
        raise EngineError("CUDA out of memory (simulated)")


class StopsMidBatch(Transcriber):
    """Delivers SIGTERM's effect while the engine is busy, then finishes the batch."""

    def __init__(self, inner: Transcriber) -> None:
        self.inner, self.engine, self.model = inner, inner.engine, inner.model
        self.agent: Agent | None = None
        self.batches = 0
        self.in_flight_seen: list[str] = []

    def transcribe_batch(self, items: list[AudioItem]) -> list[TranscriptResult]:
        self.batches += 1
        assert self.agent is not None
        self.agent.beat()
        [beat] = read_heartbeats(self.agent.store)
        self.in_flight_seen = sorted(beat.in_flight)
        self.agent.request_stop("SIGTERM (test)")
        return self.inner.transcribe_batch(items)


def test_submit_agent_fetch_then_resubmit_is_all_cache_hits(settings: Settings, whisper: Transcriber) -> None:
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 10)
    started = time.time()
    run_agent(settings, whisper)
    elapsed = time.time() - started
    _, cues = assemble(store, report.job)
    first = render(cues, "srt")
    text = " ".join(c.text for c in cues).lower()
    assert "silence" in text and "cached" in text and "goodbye" in text
    done = [r for r in read_usage(store) if r.outcome == "done"]
    assert len(done) == report.segments
    [boot_key] = store.list("boots/")  # when the node became ready, for the cost policies
    boot = json.loads(store.get(boot_key))
    assert boot["node"] == "test-node" and boot["cache_dir_had_results"] is False and boot["os_uptime_seconds"] > 0
    assert (boot["engine"], boot["model"]) == (whisper.engine, whisper.model)  # `fleet status` shows them
    # A local slot starts with its agent process, not with the host: the host's uptime (hours on CI)
    # once made the controller think a boot takes hours and route everything to the API.
    assert boot["model_load_seconds"] <= boot["boot_seconds"] <= elapsed
    assert all(r.tokens_out > 0 and r.audio_seconds > 0 and r.ended_at >= r.started_at for r in done)

    again = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 10)
    assert again.job == report.job and again.resubmitted
    run_agent(settings, Failing())  # any inference now would fail: everything must be cached
    records = read_usage(store)
    assert [r.outcome for r in records[report.segments:]] == ["cache-hit"] * report.segments
    assert render(assemble(store, report.job)[1], "srt") == first


def test_disk_cache_answers_before_the_store(settings: Settings, whisper: Transcriber) -> None:
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    run_agent(settings, whisper)
    for key in store.list("results/"):
        store.delete(key)  # the store lost them; the node's disk still has them
    submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    run_agent(settings, Failing())
    assert len(store.list("results/")) == report.segments  # re-uploaded from disk
    assert job_status(store, report.job).complete


def test_garbage_message_is_poisoned_and_agent_keeps_working(
    settings: Settings, whisper: Transcriber
) -> None:
    queue, store = backends(settings)
    queue.send("this is not a work item")
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    queue.send(json.dumps({"v": 1, "job": "j"}))
    run_agent(settings, whisper)
    assert job_status(store, report.job).complete
    dead = queue.poison_queue().receive(10, 30)
    reasons = sorted(json.loads(m.body)["error"] for m in dead)
    assert len(reasons) == 2
    assert all(r.startswith("malformed work item") for r in reasons)
    assert queue.approximate_count() == 0


def test_engine_failure_retries_then_poisons_with_reason(settings: Settings) -> None:
    settings = replace(settings, max_deliveries=3)
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    run_agent(settings, Failing())
    status = job_status(store, report.job)
    assert len(status.poisoned) == report.segments and status.done == 0
    assert all("CUDA out of memory" in p["reason"] for p in status.poisoned)
    failed = [r for r in read_usage(store) if r.outcome == "failed"]
    assert len(failed) == 3 * report.segments
    assert queue.approximate_count() == 0
    assert len(queue.poison_queue().receive(32, 30)) == report.segments


def test_missing_segment_audio_is_poisoned_at_once(settings: Settings, whisper: Transcriber) -> None:
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    for key in store.list("segments/"):
        store.delete(key)
    run_agent(settings, whisper)
    status = job_status(store, report.job)
    assert len(status.poisoned) == report.segments
    assert "missing from the store" in status.poisoned[0]["reason"]


def test_model_mismatch_is_refused_with_reason(settings: Settings, whisper: Transcriber) -> None:
    settings = replace(settings, max_deliveries=1)
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(model="large-v3"), 30)
    run_agent(settings, whisper)
    status = job_status(store, report.job)
    assert "serves model 'tiny.en'" in status.poisoned[0]["reason"]


def test_stop_mid_batch_finishes_it_and_leaves_the_rest_queued(
    settings: Settings, whisper: Transcriber
) -> None:
    settings = replace(settings, batch_size=2)
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 10)
    assert report.segments >= 4
    engine = StopsMidBatch(whisper)
    agent = Agent(settings, queue, store, lambda: engine)
    engine.agent = agent
    assert agent.run() == 0
    assert engine.batches == 1
    assert len(engine.in_flight_seen) == 2
    assert set(engine.in_flight_seen) <= {ref.id for ref in load_manifest(store, report.job).segments}
    status = job_status(store, report.job)
    assert status.done == 2
    assert len(queue.receive(32, 30)) == report.segments - 2  # visible at once, nothing lost


def test_stop_before_engine_requeues_leased_misses(settings: Settings, whisper: Transcriber) -> None:
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 10)
    agent = Agent(settings, queue, store, lambda: whisper)
    agent.engine = whisper
    agent.request_stop("test")
    agent._handle(queue.receive(32, 300))
    agent.usage.flush()
    assert [r.outcome for r in read_usage(store)] == ["requeued"] * report.segments
    assert len(queue.receive(32, 30)) == report.segments  # released with visibility 0


def test_stale_lease_yields_one_result(settings: Settings, whisper: Transcriber, tmp_path: Path) -> None:
    """Node A's lease expires, node B takes over and finishes; A finishing later changes nothing."""
    clock = FakeClock()
    queue = SqliteQueue(tmp_path / "contended.db", clock=clock)
    _, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    node_a = Agent(replace(settings, node_name="a", cache_dir=tmp_path / "a"), queue, store, lambda: whisper)
    node_b = Agent(replace(settings, node_name="b", cache_dir=tmp_path / "b"), queue, store, lambda: whisper)
    node_a.engine = node_b.engine = whisper
    leased_by_a = queue.receive(32, 5)
    clock.now += 10
    node_b._handle(queue.receive(32, 60))
    node_a._handle(leased_by_a)  # cache hit on B's result; its delete is refused and ignored
    assert queue.approximate_count() == 0
    results = store.list("results/")
    assert len(results) == report.segments
    for key in results:
        assert TranscriptResult.from_bytes(store.get(key)).segment in key


def test_agent_on_azurite(azurite: Azurite, settings: Settings, whisper: Transcriber) -> None:
    env = {"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string}
    settings = replace(settings, queue=f"azure-queue://{ACCOUNT}/work-e2e",
                       store=f"azure-blob://{ACCOUNT}/spotkit-e2e")
    queue, store = backends(settings, env)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 10)
    agent = run_agent(settings, whisper, env)
    assert agent.settler.counts().processed == report.segments
    assert job_status(store, report.job).complete
    manifest, cues = assemble(store, report.job)
    assert "goodbye" in render(cues, "txt").lower()
    for ref in manifest.segments:  # audio and results live in blob storage
        assert store.exists(audio_key(ref.id)) and store.exists(result_key("transcribe", ref.id))
    assert len(read_usage(store)) == report.segments


def test_metrics_served_over_http(settings: Settings, whisper: Transcriber) -> None:
    import urllib.request

    from tests.support.azurite import free_port

    port = free_port()
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    run_agent(replace(settings, metrics_port=port), whisper)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    assert f'spotkit_segments_total{{node="test-node",outcome="done"}} {float(report.segments)}' in text
    assert "spotkit_engine_batch_seconds_count" in text


def test_word_timestamps_when_asked(settings: Settings, whisper: Transcriber) -> None:
    queue, store = backends(settings)
    plain = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 10)
    worded = submit(DEMO_SAMPLE, queue, store, TaskOptions(word_timestamps=True), 10)
    assert plain.job != worded.job  # a different output, so different ids
    run_agent(settings, whisper)
    _, cues = assemble(store, worded.job)
    assert all(cue.words for cue in cues)
    for cue in cues:
        assert all(cue.start - 0.5 <= w[0] <= w[1] <= cue.end + 0.5 for w in cue.words or [])  # type: ignore[operator]
    assert " ".join(str(w[2]) for w in cues[0].words or []).startswith("Welcome")
    json_out = json.loads(render(cues, "json", worded.job))
    assert "words" in json_out["cues"][0]
    _, plain_cues = assemble(store, plain.job)
    assert all(c.words is None for c in plain_cues)
    assert "words" not in json.loads(render(plain_cues, "json"))["cues"][0]


def test_resubmits_before_any_agent_enqueue_each_segment_once(settings: Settings, whisper: Transcriber) -> None:
    """Four submits of an unfinished job: one message per segment, each segment's work counted once,
    and a batch's engine time shared by audio length."""
    queue, store = backends(settings)
    reports = [submit(DEMO_SAMPLE, queue, store, TaskOptions(), 10) for _ in range(4)]
    segments = reports[0].segments
    assert [r.enqueued for r in reports] == [segments, 0, 0, 0]
    assert queue.approximate_count() == segments
    run_agent(settings, whisper)
    done = [r for r in read_usage(store) if r.outcome == "done"]
    assert sorted(r.segment for r in done) == sorted(ref.id for ref in load_manifest(store, reports[0].job).segments)
    by_batch: dict[float, list[float]] = {}
    for r in done:
        by_batch.setdefault(r.started_at, []).append(r.gpu_seconds / r.audio_seconds)
    assert any(len(rates) > 1 for rates in by_batch.values())
    for rates in by_batch.values():  # GPU seconds per audio second is the same within a batch
        assert max(rates) - min(rates) < 1e-3 * max(rates) + 1e-6
    again = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 10)
    assert again.enqueued == segments  # finished: enqueued again, answered from the cache
    run_agent(settings, Failing())
    assert [r.outcome for r in read_usage(store)][len(done):] == ["cache-hit"] * segments


def test_the_same_segment_twice_in_one_lease_runs_once(settings: Settings, whisper: Transcriber) -> None:
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    [message] = queue.receive(32, 30) if report.segments == 1 else queue.receive(1, 30)
    for _ in range(3):
        queue.send(message.body)  # redelivered copies (a lost delete, a stale lease)
    queue.release(message, 0)
    run_agent(settings, whisper)
    outcomes = [r.outcome for r in read_usage(store) if r.segment == WorkItem.decode(message.body).segment]
    assert sorted(outcomes) == ["cache-hit", "cache-hit", "cache-hit", "done"]


def test_a_poisoned_segment_is_enqueued_again_by_a_resubmit(settings: Settings) -> None:
    settings = replace(settings, max_deliveries=1)
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    run_agent(settings, Failing())
    assert len(job_status(store, report.job).poisoned) == report.segments
    again = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    assert again.enqueued == report.segments and job_status(store, report.job).queued == report.segments


def test_segment_audio_corrupted_mid_blob_is_poisoned(settings: Settings, whisper: Transcriber) -> None:
    """A flipped byte in the middle of a stored FLAC may still decode — into other samples. The id is a
    hash of the samples: recomputed, it exposes the damage and the segment is poisoned with the reason."""
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    key = audio_key(load_manifest(store, report.job).segments[0].id)
    data = bytearray(store.get(key))
    for offset in range(len(data) // 2, len(data) // 2 + 64):
        data[offset] ^= 0x5A
    store.put(key, bytes(data))
    run_agent(settings, whisper)
    [poisoned] = job_status(store, report.job).poisoned
    assert "does not match its content hash" in poisoned["reason"]
    assert not store.exists(result_key("transcribe", load_manifest(store, report.job).segments[0].id))


def test_a_store_outage_mid_batch_poisons_nothing_and_redoes_no_work(settings: Settings, whisper: Transcriber) -> None:
    """The store refuses every write for a few seconds while results come out of the engine: they wait
    on the node's disk, only the upload is retried (with a growing delay), no delivery is burnt."""
    settings = replace(settings, max_deliveries=2, batch_size=2)
    queue, inner = backends(settings)
    report = submit(DEMO_SAMPLE, queue, inner, TaskOptions(), 10)
    store = FlakyStore(inner)

    class OutageAfterEngine(Transcriber):
        engine, model = whisper.engine, whisper.model

        def transcribe_batch(self, items: list[AudioItem]) -> list[TranscriptResult]:
            results = whisper.transcribe_batch(items)
            if not store.failure_times:
                store.outage(4.0)  # the results are ready; the store goes away
            return results

    agent = Agent(settings, queue, store, lambda: OutageAfterEngine(), until_idle=True)
    assert agent.run() == 0
    status = job_status(inner, report.job)
    assert status.complete and not status.poisoned
    assert queue.poison_queue().approximate_count() == 0
    done = [r for r in read_usage(inner) if r.outcome == "done"]
    assert len(done) == report.segments == len({r.segment for r in done})  # each segment's work once
    gaps = [b - a for a, b in itertools.pairwise(store.failure_times)]
    assert store.failures >= 3 and max(gaps) > 2 * min(gaps)  # backing off, not hammering


@pytest.mark.parametrize("damage", [b"", b'{"segment": "trunc', None])
def test_a_damaged_disk_result_is_recomputed_never_uploaded(settings: Settings, whisper: Transcriber,
                                                            damage: bytes | None) -> None:
    """A node disk cut off mid-write (empty, truncated) or a result whose content no longer matches its
    checksum: not served, not uploaded; the segment is run again and the good result replaces it."""
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    run_agent(settings, whisper)
    reference = {k: store.get(k) for k in store.list("results/")}
    for key, data in reference.items():
        store.delete(key)
        bad = damage if damage is not None else data.replace(b'"text":"', b'"text":"X', 1)
        (settings.cache_dir / key).write_bytes(bad)
    submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    run_agent(settings, whisper)
    assert {k: store.get(k) for k in store.list("results/")} == reference  # recomputed, byte-identical
    assert all((settings.cache_dir / k).read_bytes() == v for k, v in reference.items())
    assert len([r for r in read_usage(store) if r.outcome == "done"]) == 2 * report.segments


def test_a_corrupt_result_in_the_store_is_a_clear_error_then_replaced(settings: Settings,
                                                                      whisper: Transcriber) -> None:
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)
    run_agent(settings, whisper)
    key = store.list("results/")[0]
    good = store.get(key)
    store.put(key, good[: len(good) // 2])
    (settings.cache_dir / key).unlink()  # only the store's copy is left, and it is bad
    with pytest.raises(SpotkitError, match=r"is corrupt.*resubmit"):
        assemble(store, report.job)
    submit(DEMO_SAMPLE, queue, store, TaskOptions(), 30)  # the fix a user is told to run
    run_agent(settings, whisper)
    assert store.get(key) == good
    assert render(assemble(store, report.job)[1], "txt")


def test_a_node_with_another_model_revision_refuses_with_the_reason(settings: Settings, whisper: Transcriber) -> None:
    """Same model name, other content (republished weights, other decoding): never served from it."""
    settings = replace(settings, max_deliveries=1)
    queue, store = backends(settings)
    report = submit(DEMO_SAMPLE, queue, store, TaskOptions(revision="fw-0123456789abcdef"), 30)
    run_agent(settings, whisper)
    status = job_status(store, report.job)
    assert len(status.poisoned) == report.segments and status.done == 0
    assert f"revision {whisper.revision}" in status.poisoned[0]["reason"]
    pinned = submit(DEMO_SAMPLE, queue, store, TaskOptions(revision=whisper.revision), 30)
    assert pinned.job != report.job  # the revision is part of every id
    run_agent(settings, whisper)
    assert job_status(store, pinned.job).complete
