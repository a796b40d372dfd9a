"""A store that is down for a while: every write (and optionally read) fails with the error a real
outage gives — a different message each time, as a read-only disk's random temp-file names do."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from runtime.errors import StoreError
from runtime.store.base import ObjectStore


class FlakyStore(ObjectStore):
    def __init__(self, inner: ObjectStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.url = inner.url
        self.clock = clock
        self.down_until = 0.0
        self.down_prefixes: tuple[str, ...] = ("",)  # what the outage hits
        self.reads_fail = False
        self.failures = 0
        self.failure_times: list[float] = []
        self._lock = threading.Lock()

    def outage(self, seconds: float, prefixes: tuple[str, ...] = ("",), reads: bool = False) -> None:
        self.down_until, self.down_prefixes, self.reads_fail = self.clock() + seconds, prefixes, reads

    def _check(self, key: str, write: bool) -> None:
        if self.clock() < self.down_until and (write or self.reads_fail) and key.startswith(self.down_prefixes):
            with self._lock:
                self.failures += 1
                self.failure_times.append(self.clock())
            raise StoreError(f"cannot write {key}: [Errno 1] Operation not permitted: '.tmp-{uuid.uuid4().hex[:8]}'")

    def put(self, key: str, data: bytes) -> None:
        self._check(key, True)
        self.inner.put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._check(key, True)
        return self.inner.put_if_absent(key, data)

    def get(self, key: str) -> bytes:
        self._check(key, False)
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        self._check(key, False)
        return self.inner.exists(key)

    def list(self, prefix: str = "") -> list[str]:
        self._check(prefix, False)
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self._check(key, True)
        self.inner.delete(key)

    def ensure(self) -> None:
        self.inner.ensure()
