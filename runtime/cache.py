"""Results by content hash: the node's disk (the persistent data disk in production) first, then
the shared store. Work is never done twice: a hit in either place skips the engine.

Nothing is trusted unread: every copy, on disk or in the store, is parsed and its checksum checked
(`TranscriptResult.from_bytes`). A bad disk copy is deleted and the store asked; a bad store copy is
a miss — the segment is run again — and the fresh result replaces it. A bad copy is never uploaded.

A fresh result is kept on the node's disk first (fsynced), then published to the store: when the
store is down the result survives on disk and only the upload is retried, never the engine work.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from runtime.engines.base import METERED_ENGINES
from runtime.errors import NotFound
from runtime.records import result_key
from runtime.store.base import ObjectStore
from runtime.work import BadResult, TranscriptResult

log = logging.getLogger("spotkit.cache")


def parsed(data: bytes, where: str) -> TranscriptResult | None:
    try:
        return TranscriptResult.from_bytes(data, where)
    except BadResult as err:
        log.warning("event=bad-result where=%s error=%r (not trusted)", where, str(err))
        return None


def serves(metered: bool, serve_metered_results: bool) -> Callable[[TranscriptResult], bool]:
    """Which results a node answers from: any, unless it is a fleet node told not to answer from a
    metered API's (`Settings.serve_metered_results`): then it redoes those with its own engine."""
    if metered or serve_metered_results:
        return lambda result: True
    return lambda result: result.engine not in METERED_ENGINES


class ResultCache:
    def __init__(self, cache_dir: Path, store: ObjectStore,
                 serves: Callable[[TranscriptResult], bool] = lambda result: True) -> None:
        self.cache_dir = cache_dir
        self.store = store
        self.serves = serves  # a result it may not answer from is a miss, and is replaced when redone

    def _disk(self, task: str, segment: str) -> Path:
        return self.cache_dir / result_key(task, segment)

    def get(self, task: str, segment: str) -> tuple[bytes, str] | None:
        """A verified result and where it came from (``disk`` or ``store``), or None on a miss.

        A disk hit the store lacks (an upload cut short by an eviction or an outage) is published now.
        """
        path = self._disk(task, segment)
        key = result_key(task, segment)
        if path.is_file():
            data = path.read_bytes()
            result = parsed(data, str(path))
            if result is not None and self.serves(result):
                self.publish(task, segment, data)
                return data, "disk"
            path.unlink(missing_ok=True)
        try:
            data = self.store.get(key)
        except NotFound:
            return None
        result = parsed(data, key)
        if result is None or not self.serves(result):
            return None  # run it again; `put` replaces the bad (or not served) copy
        self._write_disk(path, data)
        return data, "store"

    def keep(self, task: str, segment: str, data: bytes) -> None:
        """A fresh result, on the node's disk (survives a store outage and a restart)."""
        self._write_disk(self._disk(task, segment), data)

    def publish(self, task: str, segment: str, data: bytes) -> bytes:
        """Make the result the store's; if a valid one it answers from is there already (another
        node's), it wins and is returned — and kept on disk; a bad one (or one it does not answer from,
        `serves`) is replaced."""
        key = result_key(task, segment)
        if self.store.exists(key):
            theirs = self._served(key)
        elif self.store.put_if_absent(key, data):
            return data
        else:
            theirs = self._served(key)
        if theirs is None:
            self.store.put(key, data)
            return data
        if theirs != data:
            self._write_disk(self._disk(task, segment), theirs)
        return theirs

    def _served(self, key: str) -> bytes | None:
        """The store's copy if it is valid and one this node answers from (else it is replaced)."""
        data = self.store.get(key)
        result = parsed(data, key)
        return data if result is not None and self.serves(result) else None

    def put(self, task: str, segment: str, data: bytes) -> bytes:
        """`keep`, then `publish`."""
        self.keep(task, segment, data)
        return self.publish(task, segment, data)

    @staticmethod
    def _write_disk(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        try:  # the rename itself survives a power cut only once the directory is synced
            dir_fd = os.open(path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
