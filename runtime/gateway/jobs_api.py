"""The asynchronous job API, for media longer than a request should wait: submit, then poll (or be
called back). ``POST /v1/spotkit/jobs`` takes the same multipart fields as a transcription (plus
``deadline``, ``priority`` and ``webhook``) and answers 202 at once; ``GET /v1/spotkit/jobs/{id}``
says how far the job is and, once complete, carries its result in every format.

A key reads only jobs it submitted (`JobOwner`): another key's job id answers 404, the same as an
unknown one, so ids cannot be probed. The webhook is POSTed once, best effort, by the instance that
accepted the job (``{"id", "status"}``, never the transcript); if that instance stops first, polling
still works from any instance.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runtime.errors import MediaError, SpotkitError
from runtime.gateway.intake import Context, GatewayError, accept, caller, wait_finished
from runtime.gateway.service import Progress
from runtime.http import HttpClient, HttpError
from runtime.jobs import JOB_ID
from runtime.retention import delete_job
from runtime.retry import Backoff, RetryPolicy

log = logging.getLogger("spotkit.gateway")
WEBHOOK_TIMEOUT_SECONDS = 10.0
WEBHOOK_RETRY = RetryPolicy(3, Backoff(base_seconds=1.0, cap_seconds=10.0))


def state_of(progress: Progress) -> str:
    if progress.poisoned and progress.finished:
        return "failed"
    if progress.finished:
        return "completed"
    return "in_progress" if progress.done else "queued"


def describe(job: str, path: str, progress: Progress) -> dict[str, Any]:
    body: dict[str, Any] = {"id": job, "object": "spotkit.job", "status": state_of(progress), "path": path,
                            "segments": progress.total, "done": progress.done}
    if progress.poisoned:
        body["errors"] = progress.poisoned
    return body


def jobs_router(ctx: Context) -> APIRouter:
    router = APIRouter()
    gateway = ctx.gateway
    pending: set[asyncio.Task[None]] = set()  # webhook waits, kept referenced until they end

    @router.post("/v1/spotkit/jobs")
    async def create_job(request: Request) -> Response:
        key = await caller(ctx, request)
        upload, asked = await accept(ctx, request, key, synchronous=False)
        try:
            job = await run_in_threadpool(gateway.cached_job, upload, asked.options)
            path = "cache"
            if job is None:
                path = (await run_in_threadpool(gateway.choose, asked.deadline_seconds)).path
                try:
                    job = (await run_in_threadpool(gateway.submit, upload, asked, path, key)).job
                except MediaError as err:
                    raise GatewayError(400, str(err), "file") from None
            else:
                await run_in_threadpool(gateway.own, key, job, path, asked.webhook)
            request.state.path, request.state.job = path, job
            seconds = await run_in_threadpool(gateway.speech_seconds, job)
            await run_in_threadpool(gateway.record, key, job, path, seconds, "jobs", upload.size)
        finally:
            upload.discard()
        progress = await run_in_threadpool(gateway.progress, job)
        if asked.webhook:
            task = asyncio.create_task(_notify(ctx, job, asked.webhook, asked.deadline_seconds))
            pending.add(task)
            task.add_done_callback(pending.discard)
        return JSONResponse(describe(job, path, progress), 202, headers={"x-spotkit-path": path, "x-spotkit-job": job})

    @router.get("/v1/spotkit/jobs/{job}")
    async def get_job(job: str, request: Request) -> Response:
        key = await caller(ctx, request)
        owner = await run_in_threadpool(gateway.owner, key, job) if JOB_ID.match(job) else None
        if owner is None:
            raise GatewayError(404, f"no job {job!r} for this key (a key sees only the jobs it submitted)", "id")
        request.state.job, request.state.path = job, owner.path
        progress = await run_in_threadpool(gateway.progress, job)
        body = describe(job, owner.path, progress)
        if body["status"] == "completed":
            body["results"] = await run_in_threadpool(gateway.results, job)
        return JSONResponse(body, headers={"x-spotkit-path": owner.path, "x-spotkit-job": job})

    @router.delete("/v1/spotkit/jobs/{job}")
    async def remove_job(job: str, request: Request) -> Response:
        key = await caller(ctx, request)
        owner = await run_in_threadpool(gateway.owner, key, job) if JOB_ID.match(job) else None
        if owner is None:
            raise GatewayError(404, f"no job {job!r} for this key (a key sees only the jobs it submitted)", "id")
        request.state.job = job
        try:
            deleted = await run_in_threadpool(delete_job, gateway.store, job, True)
        except SpotkitError as err:
            raise GatewayError(409, str(err), "id") from None
        return JSONResponse({"id": job, "object": "spotkit.job.deleted", "deleted": True,
                             "segments_deleted": deleted.segments_deleted, "segments_kept": deleted.segments_kept})

    return router


async def _notify(ctx: Context, job: str, url: str, seconds: float) -> None:
    """POST ``{"id", "status"}`` to *url* once the job is finished (or its deadline passed)."""
    progress = await wait_finished(ctx, job, seconds, poll_seconds=max(ctx.poll_seconds, 1.0))
    body = {"id": job, "object": "spotkit.job", "status": state_of(progress)}
    client = HttpClient(WEBHOOK_TIMEOUT_SECONDS, WEBHOOK_RETRY)
    try:
        await run_in_threadpool(lambda: client.post(url, json_body=body, label="the job's webhook"))
    except HttpError as err:
        log.warning("event=webhook-failed job=%s error=%r", job, str(err))  # the URL is the caller's secret
    finally:
        client.close()
