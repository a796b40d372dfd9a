"""Deleting a finished job: its manifest, and its segments' audio and results unless another job
still references them (segments are content-addressed and shared by every job with the same audio
and options; results are the cache). And media retention: the gateway keys' ``media_retention_days``,
under which a job's segment audio goes and its results stay (`expire_media`).

What is not removed: copies of results on the nodes' own disks (each node's result cache; a node that
answers a later resubmission of the same media answers from it), the uploaded media (the store never
holds it, only its segments), and translations whose model and language another job also uses (a
translation is keyed by its transcript's content, which two different segments may share).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runtime.errors import NotFound, SpotkitError
from runtime.jobs import job_status, load_manifest
from runtime.records import (
    GATEWAY_KEYS,
    GATEWAY_OWNERS,
    JOBS,
    ApiKey,
    BadRecord,
    JobOwner,
    MediaExpired,
    audio_key,
    dump,
    job_key,
    job_owners_prefix,
    media_expired_key,
    poison_key,
    queued_key,
    read_all,
    result_key,
    translation_result_key,
)
from runtime.store.base import ObjectStore
from runtime.work import TRANSLATE, JobManifest, translation_key


@dataclass(frozen=True)
class Deleted:
    job: str
    segments_deleted: int
    segments_kept: int  # still referenced by another job


def delete_job(store: ObjectStore, job: str, others_may_own: bool = False) -> Deleted:
    """Delete *job* (see the module docstring). Refuses a job that is not finished, whose segments
    agents may still be working on. With *others_may_own* (the gateway), a job another key also
    submitted is refused: its data is theirs too."""
    manifest = load_manifest(store, job)
    if not job_status(store, job).finished:
        raise SpotkitError(f"job {job} is not finished; delete it once `spotkit status {job}` shows every "
                           "segment done or poisoned")
    if others_may_own and len(store.list(job_owners_prefix(job))) > 1:
        raise SpotkitError(f"job {job} was also submitted with another key; it is kept for them")
    shared: set[str] = set()
    languages: set[tuple[str, str]] = set()
    for other in manifests(store):
        if other.job == job:
            continue
        shared.update(ref.id for ref in other.segments if other.options.task == manifest.options.task)
        languages.update((other.translator_model, language) for language in other.translate)
    task, deleted = manifest.options.task, 0
    for ref in manifest.segments:
        if ref.id in shared:
            continue
        for language in manifest.translate:
            if (manifest.translator_model, language) not in languages:
                try:
                    transcript = store.get(result_key(task, ref.id))
                except NotFound:
                    break
                store.delete(translation_result_key(translation_key(transcript, manifest.translator_model, language)))
            store.delete(poison_key(ref.id, TRANSLATE, language))
        for key in (result_key(task, ref.id), audio_key(ref.id), poison_key(ref.id), queued_key(ref.id)):
            store.delete(key)
        deleted += 1
    store.delete(job_key(job))  # last: until here, a rerun finds the job and finishes the deletion
    for key in store.list(job_owners_prefix(job)):
        store.delete(key)
    return Deleted(job, deleted, len(manifest.segments) - deleted)


def manifests(store: ObjectStore) -> Iterator[JobManifest]:
    """Every job's manifest that can be read (a damaged one is `status`'s to report, not ours)."""
    for key in store.list(JOBS):
        try:
            yield JobManifest.from_bytes(store.get(key))
        except (NotFound, BadRecord, ValueError, KeyError, TypeError):
            continue


DAY = 86400.0


def media_due(store: ObjectStore, now: float) -> dict[str, list[str]]:
    """Jobs whose segment audio is due for deletion, each with the keys whose retention it fell under:
    every key that submitted the job has a media retention, the longest of them has run out since the
    key first sent it, and the job's media has not been expired before. A job submitted without a key
    (the CLI) has no owner and is never due; nor is one a key without retention also sent."""
    keys = {k.id: k for k in read_all(store, ApiKey, GATEWAY_KEYS)}
    owners: dict[str, list[JobOwner]] = {}
    for owner in read_all(store, JobOwner, GATEWAY_OWNERS):
        owners.setdefault(owner.job, []).append(owner)
    due: dict[str, list[str]] = {}
    for job, marks in owners.items():
        days = [keys[m.key_id].media_retention_days if m.key_id in keys else 0.0 for m in marks]
        if min(days) <= 0 or now < max(m.at + d * DAY for m, d in zip(marks, days, strict=True)):
            continue
        if not store.exists(media_expired_key(job)):
            due[job] = sorted(m.key_id for m in marks)
    return due


def expire_media(store: ObjectStore, now: float, dry_run: bool = False) -> list[MediaExpired]:
    """Delete the segment audio of every job `media_due` names that is finished, keeping its results
    (transcripts, translations: `fetch` and the gateway's cache still answer from them) and the audio of
    any segment another job still needs; record each expiry (`MediaExpired`). A job still in work waits
    for the next run: its agents need the audio."""
    due = media_due(store, now)
    if not due:
        return []
    jobs = list(manifests(store))
    expiring = {m.job: m for m in jobs if m.job in due and job_status(store, m.job, now).finished}
    kept = {ref.id for m in jobs if m.job not in expiring for ref in m.segments}
    done = []
    for job, manifest in sorted(expiring.items()):
        ids = {ref.id for ref in manifest.segments}
        gone = ids - kept
        record = MediaExpired(job, now, due[job], len(gone), len(ids) - len(gone))
        if not dry_run:
            for segment in sorted(gone):
                store.delete(audio_key(segment))
            store.put_if_absent(media_expired_key(job), dump(record))
        done.append(record)
    return done
