"""Deleting a finished job: what only it references goes, what another job shares stays, and the
gateway lets only the job's own (sole) key delete it. Media retention per key: a job's audio goes
once every key that sent it has let it expire; its transcript stays and still answers."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
import pytest

from runtime.agent.loop import Agent
from runtime.config import Settings, load_settings
from runtime.engines.revision import SIMULATED_REVISION
from runtime.engines.simulated import SimulatedTranscriber
from runtime.errors import SpotkitError
from runtime.gateway.apikeys import create_key, set_retention
from runtime.jobs import assemble, load_manifest, submit
from runtime.queue import open_queue
from runtime.records import MEDIA_EXPIRED, audio_key, result_key
from runtime.retention import DAY, delete_job, expire_media
from runtime.store import open_store
from runtime.work import TaskOptions
from tests.conftest import DATA, DEMO_SAMPLE
from tests.support.gateway import agent, gateway


@pytest.fixture
def sim(tmp_path: Path) -> Settings:
    return load_settings(env={}, home=tmp_path / "home", node_name="test-node", transcriber="simulated",
                         idle_seconds=0.5, retry_seconds=0, heartbeat_seconds=0.5, simulated_speed=500.0)


def _drain(sim: Settings) -> None:
    engine = SimulatedTranscriber(sim.model, sim.simulated_speed)
    assert Agent(sim, open_queue(sim.queue), open_store(sim.store), lambda: engine, until_idle=True).run() == 0


def test_delete_keeps_what_another_job_shares(sim: Settings) -> None:
    queue, store = open_queue(sim.queue), open_store(sim.store)
    queue.ensure()
    store.ensure()
    options = TaskOptions(model=sim.model, revision=SIMULATED_REVISION)
    mine = submit(DEMO_SAMPLE, queue, store, options, 30.0)
    theirs = submit(DEMO_SAMPLE, queue, store, options, 29.0)  # another job, the same segments
    alone = submit(DATA / "speech.mp3", queue, store, options, 30.0)
    with pytest.raises(SpotkitError, match="not finished"):
        delete_job(store, mine.job)  # agents may still be working on it
    _drain(sim)
    segments = [ref.id for ref in load_manifest(store, mine.job).segments]
    shared = {ref.id for ref in load_manifest(store, theirs.job).segments} & set(segments)
    assert shared
    deleted = delete_job(store, mine.job)
    assert (deleted.segments_deleted, deleted.segments_kept) == (len(segments) - len(shared), len(shared))
    with pytest.raises(SpotkitError, match="no job"):
        load_manifest(store, mine.job)
    assert assemble(store, theirs.job)[1]  # the other job is whole
    only = load_manifest(store, alone.job).segments
    delete_job(store, alone.job)
    assert not any(store.exists(audio_key(r.id)) or store.exists(result_key("transcribe", r.id)) for r in only)


def test_the_api_deletes_only_for_the_jobs_sole_key(sim: Settings, tmp_path: Path) -> None:
    store = open_store(sim.store)
    store.ensure()
    _, text_a = create_key(store, "team-a")
    _, text_b = create_key(store, "team-b")
    a, b = ({"Authorization": f"Bearer {t}"} for t in (text_a, text_b))
    with gateway(sim, tmp_path / "spool") as base_url, \
            agent(sim, lambda: SimulatedTranscriber(sim.model, sim.simulated_speed)):
        media = {"file": ("t.wav", DEMO_SAMPLE.read_bytes())}
        job = httpx2.post(f"{base_url}/audio/transcriptions", headers=a, files=media, data={"model": "whisper-1"},
                          timeout=60).headers["x-spotkit-job"]
        assert httpx2.delete(f"{base_url}/spotkit/jobs/{job}", headers=b, timeout=10).status_code == 404
        httpx2.post(f"{base_url}/audio/transcriptions", headers=b, files=media, data={"model": "whisper-1"},
                    timeout=60)  # now team-b has sent it too: a cache hit
        shared = httpx2.delete(f"{base_url}/spotkit/jobs/{job}", headers=a, timeout=10)
        assert shared.status_code == 409 and "another key" in shared.json()["error"]["message"]
        sole = httpx2.post(f"{base_url}/audio/transcriptions", headers=a,
                           files={"file": ("s.mp3", (DATA / "speech.mp3").read_bytes())}, data={"model": "whisper-1"},
                           timeout=60).headers["x-spotkit-job"]
        gone = httpx2.delete(f"{base_url}/spotkit/jobs/{sole}", headers=a, timeout=10)
        assert gone.status_code == 200 and gone.json()["deleted"] is True
        assert httpx2.get(f"{base_url}/spotkit/jobs/{sole}", headers=a, timeout=10).status_code == 404


def test_media_retention_deletes_the_audio_once_every_sender_lets_it_go(sim: Settings, tmp_path: Path) -> None:
    store, queue = open_store(sim.store), open_queue(sim.queue)
    store.ensure()
    queue.ensure()
    keeper, text_a = create_key(store, "team-a", media_retention_days=30)
    other, text_b = create_key(store, "team-b")  # keeps media until deleted
    a, b = ({"Authorization": f"Bearer {t}"} for t in (text_a, text_b))
    demo = {"file": ("demo.flac", DEMO_SAMPLE.read_bytes())}
    speech = {"file": ("s.mp3", (DATA / "speech.mp3").read_bytes())}
    sent = time.time()
    with gateway(sim, tmp_path / "spool") as base_url, \
            agent(sim, lambda: SimulatedTranscriber(sim.model, sim.simulated_speed)):
        def post(headers: dict[str, str], media: dict[str, tuple[str, bytes]]) -> httpx2.Response:
            done = httpx2.post(f"{base_url}/audio/transcriptions", headers=headers, files=media,
                               data={"model": "whisper-1", "response_format": "text"}, timeout=60)
            assert done.status_code == 200, done.text
            return done

        first = post(a, demo)
        job_a = first.headers["x-spotkit-job"]
        job_b = post(b, speech).headers["x-spotkit-job"]
        post(a, speech)  # team-a sent it too; team-b keeps it
        # The same media from the CLI at another segment length: a job with no key, sharing segments.
        options = TaskOptions(model=sim.model, revision=SIMULATED_REVISION)
        cli = submit(DEMO_SAMPLE, queue, store, options, 15.0).job
        assert load_manifest(store, cli).segments
        mine = {ref.id for ref in load_manifest(store, job_a).segments}
        shared = mine & {ref.id for ref in load_manifest(store, cli).segments}
        assert shared and shared != mine
        _drain(sim)

        assert expire_media(store, sent + 29 * DAY) == []  # not yet
        [dry] = expire_media(store, sent + 31 * DAY, dry_run=True)
        assert dry.job == job_a and all(store.exists(audio_key(s)) for s in mine) and not store.list(MEDIA_EXPIRED)
        [record] = expire_media(store, sent + 31 * DAY)
        assert (record.job, record.key_ids, record.segments_deleted, record.segments_kept) == \
            (job_a, [keeper.id], len(mine - shared), len(shared))
        assert not any(store.exists(audio_key(s)) for s in mine - shared)
        assert all(store.exists(audio_key(s)) for s in shared)  # the CLI's job still needs them
        assert all(store.exists(audio_key(r.id)) for r in load_manifest(store, job_b).segments)
        assert expire_media(store, sent + 32 * DAY) == []  # once
        again = post(a, demo)  # the transcript was kept: the same upload still answers, from the cache
        assert again.text == first.text and again.headers["x-spotkit-path"] == "cache"

        set_retention(store, other.id, 1)  # now team-b lets its copy go too
        [later] = expire_media(store, sent + 31 * DAY)
        assert later.job == job_b and later.key_ids == sorted([keeper.id, other.id])
