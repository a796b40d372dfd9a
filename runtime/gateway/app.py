"""The gateway's ASGI app: OpenAI's ``/v1/audio/transcriptions`` and ``/v1/models`` in front of the
queue and the store, so an application moves to the fleet by changing its ``OPENAI_BASE_URL``.

A synchronous request is submitted like ``spotkit submit`` (to the fleet's queue, or to the API
queue when the controller's routing says so), waited for — bounded — and answered in the format
asked; identical media answers from the finished job at once. Media longer than a request should
wait goes through the asynchronous job API (`runtime.gateway.jobs_api`). Every response names the
path that served it in ``x-spotkit-path`` (fleet | api | cache) and the job in ``x-spotkit-job``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runtime.config import Settings
from runtime.engines.revision import transcriber_revision
from runtime.errors import MediaError, SpotkitError
from runtime.gateway.intake import Context, GatewayError, accept, caller, wait_finished
from runtime.gateway.jobs_api import jobs_router
from runtime.gateway.observe import AccessLog, GatewayMetrics, RateLimiter
from runtime.gateway.service import Gateway
from runtime.queue import open_queue
from runtime.records import ROUTING_KEY
from runtime.store import open_store
from runtime.urls import api_queue_url

DEFAULT_WAIT_SECONDS = 120.0
DEFAULT_MAX_UPLOAD_MB = 25.0  # OpenAI's own limit for this endpoint


def create_app(settings: Settings, *, wait_seconds: float = DEFAULT_WAIT_SECONDS,
               max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, spool_dir: Path | None = None,
               poll_seconds: float = 0.2) -> AccessLog:
    """The app for one gateway instance, on the queue and store of *settings*."""
    store = open_store(settings.store)
    queue = open_queue(settings.queue, settings.max_deliveries)
    api_queue = open_queue(api_queue_url(settings.queue), settings.max_deliveries)
    for backend in (store, queue, api_queue):
        backend.ensure()
    spool = spool_dir or Path(tempfile.gettempdir()) / "spotkit-gateway"
    spool.mkdir(parents=True, exist_ok=True)
    gateway = Gateway(settings, store, queue, api_queue, transcriber_revision(settings, store))
    metrics = GatewayMetrics()
    ctx = Context(gateway, RateLimiter(), metrics, spool, wait_seconds, int(max_upload_mb * 1e6), poll_seconds)
    app = FastAPI(title="spotkit gateway", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, err: GatewayError) -> Response:
        return err.response()

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/readyz")
    async def readyz() -> Response:
        try:  # the two things a request needs: the store answers, the queue answers
            await run_in_threadpool(store.exists, ROUTING_KEY)
            await run_in_threadpool(queue.approximate_count)
        except SpotkitError as err:
            return JSONResponse({"ready": False, "reason": type(err).__name__}, 503)
        return JSONResponse({"ready": True})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, object]:
        await caller(ctx, request)
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "spotkit"}
                                           for name in gateway.models]}

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        request.state.route = "transcriptions"
        key = await caller(ctx, request)
        upload, asked = await accept(ctx, request, key, synchronous=True)
        try:
            headers = {"x-spotkit-ignored": ",".join(asked.ignored)} if asked.ignored else {}
            job = await run_in_threadpool(gateway.cached_job, upload, asked.options)
            if job is not None:
                path = "cache"
                await run_in_threadpool(gateway.own, key, job, path)
            else:
                choice = await run_in_threadpool(gateway.choose, asked.deadline_seconds)
                path = choice.path
                try:
                    report = await run_in_threadpool(gateway.submit, upload, asked, path, key)
                except MediaError as err:
                    raise GatewayError(400, str(err), "file") from None
                job = report.job
            request.state.path, request.state.job = path, job
            request.state.cache = "hit" if path == "cache" else "miss"
            headers.update({"x-spotkit-path": path, "x-spotkit-job": job,
                            "x-spotkit-cache": request.state.cache})
            progress = await wait_finished(ctx, job, ctx.wait_seconds)
            if progress.poisoned:
                raise GatewayError(502, f"job {job}: {len(progress.poisoned)} of {progress.total} segments "
                                        f"failed ({progress.poisoned[0]})", headers=headers)
            if not progress.finished:
                raise GatewayError(504, f"job {job} did not finish within {ctx.wait_seconds:g} s "
                                        f"({progress.done}/{progress.total} segments); its result will be at "
                                        f"GET /v1/spotkit/jobs/{job}", headers=headers, code="timeout")
            body, media_type = await run_in_threadpool(gateway.render, job, asked.response_format)
            seconds = await run_in_threadpool(gateway.speech_seconds, job)
            metrics.audio.labels(path).inc(seconds)
            cost = await run_in_threadpool(gateway.record, key, job, path, seconds, "transcriptions", upload.size)
            headers["x-spotkit-cost-usd"] = f"{cost:.6f}"
            return Response(body, 200, headers=headers, media_type=media_type)
        finally:
            upload.discard()

    app.include_router(jobs_router(ctx))
    return AccessLog(app, metrics)
