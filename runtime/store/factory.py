"""Choose the store backend from a URL: ``file:///PATH``, ``azure-blob://ACCOUNT/CONTAINER`` or
``s3://BUCKET[/PREFIX]``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from runtime.store.base import ObjectStore
from runtime.urls import STORE_SCHEMES, connection_string, parse_backend_url


def open_store(url: str, env: Mapping[str, str] | None = None) -> ObjectStore:
    env = os.environ if env is None else env
    parsed = parse_backend_url(url, "SPOTKIT_STORE", STORE_SCHEMES)
    if parsed.scheme == "file":
        from runtime.store.file_store import FileStore

        return FileStore(Path(parsed.path))
    if parsed.scheme == "s3":
        from runtime.store.s3_store import S3Store

        return S3Store(parsed.account, parsed.name, env)
    from runtime.store.azure_blob import AzureBlobStore

    return AzureBlobStore(parsed.account, parsed.name, connection_string(env))
