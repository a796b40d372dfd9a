"""Choose the queue backend from a URL: ``sqlite:///PATH[?queue=NAME]`` or ``azure-queue://ACCOUNT/QUEUE``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from runtime.queue.base import WorkQueue
from runtime.urls import QUEUE_SCHEMES, connection_string, parse_backend_url


def open_queue(url: str, max_deliveries: int = 5, env: Mapping[str, str] | None = None) -> WorkQueue:
    env = os.environ if env is None else env
    parsed = parse_backend_url(url, "SPOTKIT_QUEUE", QUEUE_SCHEMES)
    if parsed.scheme == "sqlite":
        from runtime.queue.sqlite_queue import SqliteQueue

        return SqliteQueue(Path(parsed.path), parsed.name or "work", max_deliveries)
    from runtime.queue.azure_queue import AzureQueue

    return AzureQueue(parsed.account, parsed.name, max_deliveries, connection_string(env))
