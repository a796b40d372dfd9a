"""A request's way in, shared by the synchronous and the asynchronous routes: the key, its rate and
size limits, the upload streamed to disk, the options checked — each refusal an OpenAI-shaped error
before anything is submitted — and the bounded wait for a job to finish."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from runtime.gateway.apikeys import KeyRefused, authenticate
from runtime.gateway.observe import GatewayMetrics, RateLimiter, retry_after_header
from runtime.gateway.responses import error_body
from runtime.gateway.service import Asked, BadRequest, Gateway, Progress
from runtime.gateway.uploads import Upload, UploadRefused, check_declared_length, receive_upload
from runtime.records import ApiKey


class GatewayError(Exception):
    """An answer other than success, in OpenAI's error shape."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 headers: dict[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.headers, self.code = status, message, param, headers or {}, code

    def response(self) -> Response:
        return Response(error_body(self.status, self.message, self.param, self.code), self.status,
                        headers=self.headers, media_type="application/json")


@dataclass
class Context:
    """What every route shares: one per app (and so per gateway instance)."""

    gateway: Gateway
    limiter: RateLimiter
    metrics: GatewayMetrics
    spool_dir: Path
    wait_seconds: float  # the longest a synchronous request waits for its job
    max_upload_bytes: int  # the instance's cap; a key's own limit may be lower
    poll_seconds: float = 0.2


async def caller(ctx: Context, request: Request) -> ApiKey:
    """The request's key (401 when missing, unknown or revoked), within its rate (429 otherwise)."""
    try:
        key = await run_in_threadpool(authenticate, ctx.gateway.store, request.headers.get("authorization"))
    except KeyRefused as err:
        raise GatewayError(401, str(err), code="invalid_api_key") from None
    request.state.key_id = key.id
    wait = ctx.limiter.take(key.id, key.rate_per_minute)
    if wait > 0:
        raise GatewayError(429, f"rate limit of {key.rate_per_minute} requests a minute reached for key "
                                f"{key.id}; retry after {retry_after_header(wait)} s",
                           headers={"retry-after": retry_after_header(wait)}, code="rate_limit_exceeded")
    return key


async def accept(ctx: Context, request: Request, key: ApiKey, synchronous: bool) -> tuple[Upload, Asked]:
    """The upload on disk and its checked options; the caller discards the upload when done."""
    cap = min(ctx.max_upload_bytes, int(key.max_upload_mb * 1e6))
    try:
        check_declared_length(request.headers.get("content-length"), cap)
        upload = await receive_upload(request.headers.get("content-type"), request.stream(), cap, ctx.spool_dir)
    except UploadRefused as err:
        raise GatewayError(err.status, err.message, err.param) from None
    request.state.bytes_in = upload.size
    ctx.metrics.bytes_in.inc(upload.size)
    try:
        return upload, ctx.gateway.ask(upload, synchronous, ctx.wait_seconds)
    except BadRequest as err:
        upload.discard()
        raise GatewayError(400, str(err), err.param) from None


async def wait_finished(ctx: Context, job: str, seconds: float, poll_seconds: float | None = None) -> Progress:
    """Poll the store until *job* is finished (done or poisoned) or *seconds* pass; the last progress."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    delay = poll_seconds or ctx.poll_seconds
    while True:
        progress = await run_in_threadpool(ctx.gateway.progress, job)
        if progress.finished or loop.time() >= until:
            return progress
        await asyncio.sleep(min(delay, max(0.0, until - loop.time())))
        delay = min(delay * 1.5, 10 * (poll_seconds or ctx.poll_seconds), 5.0)
