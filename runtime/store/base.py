"""The store contract: flat keys (``a/b/c.json``) to bytes.

* ``put_if_absent`` is the write every result uses: content-addressed keys make it idempotent, and
  two nodes finishing the same segment (a stale lease, an eviction) never produce two results.
* ``put`` overwrites (heartbeats, manifests rewritten with the same bytes).
* ``get`` raises `runtime.errors.NotFound`; ``delete`` tolerates "already gone".
* ``list`` returns keys under a prefix, sorted.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

from runtime.errors import StoreError

_KEY = re.compile(r"^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$")


def check_key(key: str) -> str:
    if not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise StoreError(f"invalid store key {key!r}: use letters, digits, '._=-' and '/' separators",
                         transient=False)
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: "" or the start of a valid key (a trailing "/" allowed); never a path that
    climbs out of the store ("..")."""
    body = prefix[:-1] if prefix.endswith("/") else prefix
    if body:
        check_key(body)
    return prefix


class ObjectStore(ABC):
    url: str

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write, replacing whatever is there."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write only if no object has the key; True when this call wrote it."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Read; `NotFound` if absent."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object has the key."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Keys that start with *prefix*, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove; no error if absent."""

    def ensure(self) -> None:
        """Create the container if needed (idempotent); the default needs nothing."""

    def close(self) -> None:
        """Release connections; the default has none."""
