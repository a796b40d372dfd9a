"""Azure Instance Metadata Service: Scheduled Events and the VM's own name.

Every call bypasses proxies (IMDS must be reached directly), sends ``Metadata: true`` and has a
short timeout; failures become `ImdsError` so the watcher can log, count and keep polling. Calls are
tried once: the watcher's poll loop is the retry (`runtime.retry.ONCE`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from runtime.errors import SpotkitError
from runtime.eviction.events import Document, MalformedDocument, parse_document
from runtime.http import HttpClient, HttpError
from runtime.retry import ONCE

DEFAULT_ENDPOINT = "http://169.254.169.254"
EVENTS_API = "2020-07-01"
COMPUTE_API = "2021-02-01"


class ImdsError(SpotkitError):
    """The metadata service could not be read (unreachable, HTTP error, malformed reply)."""

    transient = True

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when the service answered one


@dataclass
class ImdsClient:
    endpoint: str = DEFAULT_ENDPOINT
    timeout: float = 2.0
    _http: HttpClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.endpoint = self.endpoint.rstrip("/")
        # proxies=False ignores HTTP(S)_PROXY: IMDS is link-local and never proxied.
        self._http = HttpClient(self.timeout, ONCE, proxies=False, headers={"Metadata": "true"})

    def _request(self, path: str, body: bytes | None = None) -> bytes:
        try:
            if body is None:
                return self._http.get(f"{self.endpoint}{path}").body
            return self._http.post(f"{self.endpoint}{path}", content=body,
                                   headers={"Content-Type": "application/json"}).body
        except HttpError as err:
            raise ImdsError(f"{path}: {err}", status=err.status) from None

    def scheduled_events(self) -> Document:
        body = self._request(f"/metadata/scheduledevents?api-version={EVENTS_API}")
        try:
            return parse_document(body)
        except MalformedDocument as err:
            raise ImdsError(f"scheduled events: malformed reply ({err})") from None

    def acknowledge(self, event_ids: list[str]) -> None:
        payload = json.dumps({"StartRequests": [{"EventId": e} for e in event_ids]}).encode()
        self._request(f"/metadata/scheduledevents?api-version={EVENTS_API}", payload)

    def vm_name(self) -> str:
        body = self._request(f"/metadata/instance/compute?api-version={COMPUTE_API}")
        try:
            name = json.loads(body)["name"]
        except (ValueError, KeyError, TypeError):
            raise ImdsError("instance metadata: no 'name' in the compute document") from None
        if not isinstance(name, str) or not name:
            raise ImdsError("instance metadata: empty VM name")
        return name
