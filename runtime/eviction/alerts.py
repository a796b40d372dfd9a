"""Eviction alerts: a structured log line always, and a webhook (Slack-compatible ``text``) when
configured — posted from a background thread under the kit's retry policy (transient failures
retried with jittered backoff; a 4xx, which will not heal, is not), so an alert never delays a drain."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from runtime import __version__
from runtime.errors import SpotkitError
from runtime.http import HttpClient
from runtime.retry import Backoff, RetryPolicy

log = logging.getLogger("spotkit.alerts")

# The runbooks of the deployed version, unless the stack names its own copy (`runbookBaseUrl`).
DEFAULT_RUNBOOKS = f"https://github.com/spotkit/spotkit/blob/v{__version__}/docs/runbooks"
# Each alert links the runbook for what it reports (docs/runbooks/<page>).
RUNBOOK_PAGES = {"eviction": "eviction.md", "eviction-storm": "eviction-storm.md", "eviction-digest": "eviction.md",
                 "api-budget": "api-fallback-costs.md"}


def runbook_url(base: str, event: str) -> str:
    return f"{(base or DEFAULT_RUNBOOKS).rstrip('/')}/{RUNBOOK_PAGES.get(event, 'README.md')}"


class Alerter:
    def __init__(self, webhook_url: str = "", runbook_base_url: str = "", timeout: float = 5.0,
                 attempts: int = 4, backoff_seconds: float = 1.0) -> None:
        self.webhook_url = webhook_url
        self.runbook_base_url = runbook_base_url
        self.attempts = attempts
        self._http = HttpClient(timeout, RetryPolicy(attempts, Backoff(base_seconds=backoff_seconds,
                                                                           cap_seconds=30.0)))
        self._threads: list[threading.Thread] = []
        self.delivered = 0
        self.failed = 0

    def notify(self, event: str, text: str, payload: dict[str, Any]) -> None:
        """Any other alert (the API budget): the same log line and webhook as an eviction's."""
        link = runbook_url(self.runbook_base_url, event)
        self._send(event, {**payload, "event": event, "runbook": link, "text": f"{text}. Runbook: {link}"})

    def eviction(self, record: dict[str, Any]) -> None:
        link = runbook_url(self.runbook_base_url, "eviction")
        payload = {
            **record,
            "runbook": link,
            "text": (f":warning: spotkit node *{record['node']}* drained for {record['event_type']} "
                     f"({record['event_id']}): notice {record['notice_seconds']:.1f} s, drained in "
                     f"{record['drain_seconds']:.1f} s, {record['requeued']} segments requeued, "
                     f"{record['finished']} finished, {record['wasted_gpu_seconds']:.1f} GPU s wasted. "
                     f"Runbook: {link}"),
        }
        self._send("eviction", payload)

    def _send(self, event: str, body: dict[str, Any]) -> None:
        """The structured log line always; the webhook, when configured, from a background thread."""
        log.warning("event=%s %s", event, json.dumps(body, sort_keys=True))
        if self.webhook_url:
            thread = threading.Thread(target=self._post, args=(body,), daemon=True, name="alert")
            self._threads.append(thread)
            thread.start()

    def _post(self, payload: dict[str, Any]) -> None:
        def failed(attempt: int, err: SpotkitError, delay: float) -> None:
            log.warning("event=alert-failed attempt=%d retry_in=%.1f error=%r", attempt, delay, str(err))

        try:
            self._http.post(self.webhook_url, json_body=payload, label="alert webhook", on_retry=failed)
        except SpotkitError as err:
            self.failed += 1
            log.error("event=alert-undelivered webhook attempts=%d error=%r", self.attempts, str(err))
            return
        self.delivered += 1

    def wait(self, timeout: float = 10.0) -> None:
        """Let pending deliveries finish (used before exit and in tests)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
