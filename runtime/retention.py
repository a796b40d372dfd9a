"""Deleting a finished job: its manifest, and its segments' audio and results unless another job
still references them (segments are content-addressed and shared by every job with the same audio
and options; results are the cache).

What is not removed: copies of results on the nodes' own disks (each node's result cache; a node that
answers a later resubmission of the same media answers from it), the uploaded media (the store never
holds it, only its segments), and translations whose model and language another job also uses (a
translation is keyed by its transcript's content, which two different segments may share).
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.errors import NotFound, SpotkitError
from runtime.jobs import job_status, load_manifest
from runtime.records import (
    JOBS,
    BadRecord,
    audio_key,
    job_key,
    job_owners_prefix,
    poison_key,
    queued_key,
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
    for key in store.list(JOBS):
        if key == job_key(job):
            continue
        try:
            other = JobManifest.from_bytes(store.get(key))
        except (NotFound, BadRecord, ValueError, KeyError, TypeError):
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
