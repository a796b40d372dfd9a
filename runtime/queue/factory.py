"""Choose the queue backend from a URL: ``sqlite:///PATH[?queue=NAME]``, ``azure-queue://ACCOUNT/QUEUE`` or
``sqs://REGION/QUEUE``; any of them with ``?shards=N`` is N queues presented as one
(`runtime.queue.sharded`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from runtime.errors import ConfigError
from runtime.queue.base import WorkQueue
from runtime.queue.sharded import MAX_SHARDS, ShardedQueue, shard_name
from runtime.urls import QUEUE_SCHEMES, BackendUrl, connection_string, parse_backend_url


def shard_count(url: str, parsed: BackendUrl) -> int:
    raw = parsed.options.get("shards", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_SHARDS:
        raise ConfigError(f"SPOTKIT_QUEUE = {url!r}: shards={raw!r} must be a whole number from 1 to {MAX_SHARDS}")
    return int(raw)


def open_queue(url: str, max_deliveries: int = 5, env: Mapping[str, str] | None = None) -> WorkQueue:
    env = os.environ if env is None else env
    parsed = parse_backend_url(url, "SPOTKIT_QUEUE", QUEUE_SCHEMES)
    shards = shard_count(url, parsed)
    name = parsed.name or ("work" if parsed.scheme == "sqlite" else "")
    if shards == 1:
        return _one(parsed, name, max_deliveries, env)
    return ShardedQueue(name, [_one(parsed, shard_name(name, i), max_deliveries, env) for i in range(shards)],
                        max_deliveries)


def _one(parsed: BackendUrl, name: str, max_deliveries: int, env: Mapping[str, str]) -> WorkQueue:
    if parsed.scheme == "sqlite":
        from runtime.queue.sqlite_queue import SqliteQueue

        return SqliteQueue(Path(parsed.path), name, max_deliveries)
    if parsed.scheme == "sqs":
        from runtime.queue.sqs_queue import SqsQueue

        return SqsQueue(parsed.account, name, max_deliveries, env)
    from runtime.queue.azure_queue import AzureQueue

    return AzureQueue(parsed.account, name, max_deliveries, connection_string(env))
