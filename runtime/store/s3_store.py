"""Amazon S3 (or an S3-compatible store) — the same contract as the file store.

``s3://BUCKET[/PREFIX]``: every key lives under PREFIX, so several deployments can share a bucket.
``put_if_absent`` is a conditional ``PutObject`` with ``If-None-Match: *``: S3 itself picks the one
writer that wins (412 PreconditionFailed for the others). A 409 ConditionalRequestConflict means
another conditional write of the same key is in flight; it is retried, and then answers as the
winner's key does. Listing pages through ``ListObjectsV2`` (1,000 keys a page). Credentials and the
endpoint override: `runtime.aws_env`; errors are classified there by code, mapped here only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from runtime.aws_env import CONDITION_CONFLICT, CONDITION_FAILED, MISSING_KEY, classify, client
from runtime.errors import NotFound, SpotkitError, StoreError
from runtime.store.base import ObjectStore, check_key, check_prefix

T = TypeVar("T")
CONFLICT_RETRIES = 5


class S3Store(ObjectStore):
    page_size = 1000  # ListObjectsV2's most keys a page

    def __init__(self, bucket: str, prefix: str = "", env: Mapping[str, str] | None = None,
                 _client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._client = _client if _client is not None else client("s3", None, env)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except SpotkitError:
            raise  # already ours (a nested call: the queue's URL looked up on first use)
        except Exception as err:  # botocore raises many unrelated types; classify() sorts them
            fault = classify(err)
            raise StoreError(f"{what} on {self.url}: {fault.summary}", transient=fault.transient) from None

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def ensure(self) -> None:
        region = self._client.meta.region_name
        args: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":  # us-east-1 refuses a LocationConstraint naming itself
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**args)
        except Exception as err:
            if classify(err).code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise StoreError(f"create bucket on {self.url}: {classify(err).summary}",
                                 transient=classify(err).transient) from None

    def close(self) -> None:
        self._client.close()

    def put(self, key: str, data: bytes) -> None:
        name = self._key(key)
        self._call(f"write {key}", lambda: self._client.put_object(Bucket=self.bucket, Key=name, Body=data))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        name = self._key(key)
        for attempt in range(CONFLICT_RETRIES):
            try:
                self._client.put_object(Bucket=self.bucket, Key=name, Body=data, IfNoneMatch="*")
                return True
            except Exception as err:
                fault = classify(err)
                if fault.code in CONDITION_FAILED:
                    return False
                if fault.code not in CONDITION_CONFLICT or attempt == CONFLICT_RETRIES - 1:
                    raise StoreError(f"write {key} on {self.url}: {fault.summary}",
                                     transient=fault.transient) from None
                time.sleep(0.05 * 2 ** attempt)  # the other writer's request is still in flight
        raise StoreError(f"write {key} on {self.url}: conditional write kept conflicting")  # pragma: no cover

    def get(self, key: str) -> bytes:
        name = self._key(key)
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=name)
        except Exception as err:
            fault = classify(err)
            if fault.code in MISSING_KEY:
                raise NotFound(f"{key}: not in store {self.url}") from None
            raise StoreError(f"read {key} on {self.url}: {fault.summary}", transient=fault.transient) from None
        return bytes(self._call(f"read {key}", answer["Body"].read))

    def exists(self, key: str) -> bool:
        name = self._key(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=name)
            return True
        except Exception as err:
            fault = classify(err)
            if fault.code in MISSING_KEY or fault.status == 404:
                return False
            raise StoreError(f"check {key} on {self.url}: {fault.summary}", transient=fault.transient) from None

    def list(self, prefix: str = "") -> list[str]:
        check_prefix(prefix)

        def pages() -> list[str]:
            found: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix,
                                           PaginationConfig={"PageSize": self.page_size}):
                found += [str(item["Key"])[len(self.prefix):] for item in page.get("Contents", [])]
            return found

        return sorted(self._call(f"list {prefix!r}", pages))

    def delete(self, key: str) -> None:
        name = self._key(key)  # S3 answers 204 for a key that is not there: "already gone" is fine
        self._call(f"delete {key}", lambda: self._client.delete_object(Bucket=self.bucket, Key=name))
