"""Azure Instance Metadata Service: Scheduled Events and the VM's own name.

Every call bypasses proxies (IMDS must be reached directly), sends ``Metadata: true`` and has a
short timeout; failures become `ImdsError` so the watcher can log, count and keep polling.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from runtime.errors import SpotkitError
from runtime.eviction.events import Document, MalformedDocument, parse_document

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

    def __post_init__(self) -> None:
        self.endpoint = self.endpoint.rstrip("/")
        # An empty ProxyHandler ignores HTTP(S)_PROXY: IMDS is link-local and never proxied.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _request(self, path: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(
            f"{self.endpoint}{path}", data=body, method="POST" if body is not None else "GET",
            headers={"Metadata": "true", **({"Content-Type": "application/json"} if body else {})},
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                return bytes(reply.read())
        except urllib.error.HTTPError as err:
            raise ImdsError(f"{path}: HTTP {err.code} {err.reason}", status=err.code) from None
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ImdsError(f"{path}: unreachable ({reason})") from None

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
