"""Results by content hash: the node's disk (the persistent data disk in production) first, then
the shared store. Work is never done twice: a hit in either place skips the engine."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from runtime.errors import NotFound
from runtime.records import result_key
from runtime.store.base import ObjectStore


class ResultCache:
    def __init__(self, cache_dir: Path, store: ObjectStore) -> None:
        self.cache_dir = cache_dir
        self.store = store

    def _disk(self, task: str, segment: str) -> Path:
        return self.cache_dir / result_key(task, segment)

    def get(self, task: str, segment: str) -> tuple[bytes, str] | None:
        """The result and where it came from (``disk`` or ``store``), or None on a miss.

        A disk hit the store lacks (an upload cut short by an eviction) is uploaded now.
        """
        path = self._disk(task, segment)
        if path.is_file():
            data = path.read_bytes()
            key = result_key(task, segment)
            if not self.store.exists(key):  # a cheap check; the bytes travel only when missing
                self.store.put_if_absent(key, data)
            return data, "disk"
        try:
            data = self.store.get(result_key(task, segment))
        except NotFound:
            return None
        self._write_disk(path, data)
        return data, "store"

    def put(self, task: str, segment: str, data: bytes) -> bytes:
        """Store a fresh result; if another node got there first, theirs wins and is returned."""
        key = result_key(task, segment)
        if not self.store.put_if_absent(key, data):
            data = self.store.get(key)
        self._write_disk(self._disk(task, segment), data)
        return data

    @staticmethod
    def _write_disk(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
