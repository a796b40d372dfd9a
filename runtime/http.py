"""The kit's one HTTP client for its own calls: metadata service, webhooks, vLLM health and metrics,
the price API, the local fleet's control port.

It is built on ``httpx2``, the client the openai SDK itself runs on, so the kit carries one HTTP
stack. Every call has an explicit timeout; failures become `HttpError` with a *kind*: transient
(unreachable, timed out, 408/409/425/429/5xx) or not (any other status). Retries are the caller's
`RetryPolicy` (`runtime.retry`), which honours a server's ``Retry-After``. The metadata service must
never be reached through a proxy: ``proxies=False`` ignores ``HTTP(S)_PROXY`` as the docs require.
Tests pass a ``transport`` (``httpx2.MockTransport``) or point the client at a local stand-in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2

from runtime.errors import SpotkitError
from runtime.retry import ONCE, RetryPolicy, plain_wait

TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class HttpError(SpotkitError):
    """An HTTP call failed. ``kind`` says how: ``timeout`` (no answer in time), ``unreachable`` (no
    connection) or ``status`` (an answer with a refused ``status`` code) or ``body`` (an answer that cannot be read)."""

    def __init__(self, message: str, kind: str, status: int | None = None, retry_after: float | None = None,
                 body: bytes = b"") -> None:
        super().__init__(message, transient=status is None or status in TRANSIENT_STATUS)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.body = body


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON, or a non-transient `HttpError` (a server that answers garbage will again)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise HttpError(f"the answer is not JSON: {self.body[:80]!r}", "body", self.status) from None


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the delta form; an HTTP date is ignored and backoff applies)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


class HttpClient:
    """One base URL (or none), one timeout, one retry policy; thread-safe like ``httpx2.Client``."""

    def __init__(self, timeout: float, retry: RetryPolicy = ONCE, *, proxies: bool = True,
                 headers: Mapping[str, str] | None = None, transport: httpx2.BaseTransport | None = None,
                 wait: Callable[[float], bool] = plain_wait) -> None:
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout, self.retry, self.wait = timeout, retry, wait
        self._client = httpx2.Client(timeout=timeout, trust_env=proxies, headers=dict(headers or {}),
                                     transport=transport)

    def request(self, method: str, url: str, *, json_body: Any = None, content: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout: float | None = None,
                accept: Callable[[int], bool] = lambda status: 200 <= status < 300,
                retry: RetryPolicy | None = None, label: str = "",
                on_retry: Callable[[int, SpotkitError, float], None] = lambda n, err, delay: None) -> Reply:
        """One call under the retry policy; an answer *accept* refuses raises `HttpError`. Errors name
        the call by *label* when given (a webhook URL is a secret and must not reach a log)."""
        what = f"{method} {label or url}"

        def once() -> Reply:
            try:
                response = self._client.request(method, url, json=json_body, content=content,
                                                headers=dict(headers or {}),
                                                timeout=self.timeout if timeout is None else timeout)
            except httpx2.TimeoutException:
                raise HttpError(f"{what}: no answer within {timeout or self.timeout:g} s", "timeout") from None
            except httpx2.HTTPError as err:  # connect refused, reset, DNS, protocol garbage
                raise HttpError(f"{what}: unreachable ({type(err).__name__}: {err})", "unreachable") from None
            reply = Reply(response.status_code, response.content, dict(response.headers))
            if not accept(reply.status):
                raise HttpError(f"{what}: HTTP {reply.status} {response.reason_phrase}".rstrip(),
                                "status", reply.status, retry_after=retry_after_seconds(response.headers.get(
                                    "Retry-After")), body=reply.body[:500])
            return reply

        return (retry or self.retry).run(once, self.wait, on_retry=on_retry)

    def get(self, url: str, **options: Any) -> Reply:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> Reply:
        return self.request("POST", url, **options)

    def close(self) -> None:
        self._client.close()
