"""Choose the queue backend from a URL: ``sqlite:///PATH[?queue=NAME]``, ``azure-queue://ACCOUNT/QUEUE`` or
``sqs://REGION/QUEUE``; any of them with ``?shards=N`` is N queues presented as one
(`runtime.queue.sharded`), and with ``?pack=K`` carries up to K work items a message
(`runtime.queue.packed`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from runtime.errors import ConfigError
from runtime.queue.base import WorkQueue
from runtime.queue.packed import MAX_PACK, PackedQueue
from runtime.queue.sharded import MAX_SHARDS, ShardedQueue, shard_name
from runtime.urls import QUEUE_SCHEMES, BackendUrl, connection_string, parse_backend_url


def _whole(url: str, parsed: BackendUrl, option: str, most: int) -> int:
    raw = parsed.options.get(option, "1")
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise ConfigError(f"SPOTKIT_QUEUE = {url!r}: {option}={raw!r} must be a whole number from 1 to {most}")
    return int(raw)


def shard_count(url: str, parsed: BackendUrl) -> int:
    return _whole(url, parsed, "shards", MAX_SHARDS)


def open_queue(url: str, max_deliveries: int = 5, env: Mapping[str, str] | None = None) -> WorkQueue:
    env = os.environ if env is None else env
    parsed = parse_backend_url(url, "SPOTKIT_QUEUE", QUEUE_SCHEMES)
    shards = shard_count(url, parsed)
    pack = _whole(url, parsed, "pack", MAX_PACK)
    name = parsed.name or ("work" if parsed.scheme == "sqlite" else "")
    queue = _one(parsed, name, max_deliveries, env) if shards == 1 else ShardedQueue(
        name, [_one(parsed, shard_name(name, i), max_deliveries, env) for i in range(shards)], max_deliveries)
    return queue if pack == 1 else PackedQueue(queue, pack)


def _one(parsed: BackendUrl, name: str, max_deliveries: int, env: Mapping[str, str]) -> WorkQueue:
    if parsed.scheme == "sqlite":
        from runtime.queue.sqlite_queue import SqliteQueue

        return SqliteQueue(Path(parsed.path), name, max_deliveries)
    if parsed.scheme == "sqs":
        from runtime.queue.sqs_queue import SqsQueue

        return SqsQueue(parsed.account, name, max_deliveries, env)
    from runtime.queue.azure_queue import AzureQueue

    return AzureQueue(parsed.account, name, max_deliveries, connection_string(env))
