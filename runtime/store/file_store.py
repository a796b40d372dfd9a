"""The embedded store: a directory tree, written atomically (temp file, then link or rename).

Safe for many processes on one machine: ``put_if_absent`` uses a hard link, which fails if the
target exists, so exactly one writer wins and readers never see a half-written object.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from runtime.errors import NotFound, StoreError
from runtime.store.base import ObjectStore, check_key, check_prefix


class FileStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root}"

    def ensure(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the store directory {self.root}: {err}") from None

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _temp(self, path: Path, data: bytes) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            self._discard(tmp)
            raise
        return tmp

    @staticmethod
    def _discard(tmp: str) -> None:
        """Remove a temp file on the way out. When the directory itself refuses changes (read-only,
        immutable) the unlink fails too; the write's own error is the one to report, and a leftover
        ``.tmp-`` file is invisible to ``list``."""
        with contextlib.suppress(OSError):
            os.unlink(tmp)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            tmp = self._temp(path, data)
        except OSError as err:
            raise StoreError(f"cannot write {key} to {self.root}: {err}") from None
        try:
            os.replace(tmp, path)
        except OSError as err:
            self._discard(tmp)
            raise StoreError(f"cannot write {key} to {self.root}: {err}") from None

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        if path.exists():
            return False
        try:
            tmp = self._temp(path, data)
        except OSError as err:
            raise StoreError(f"cannot write {key} to {self.root}: {err}") from None
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as err:
            raise StoreError(f"cannot write {key} to {self.root}: {err}") from None
        finally:
            self._discard(tmp)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{key}: not in store {self.url}") from None
        except OSError as err:
            raise StoreError(f"cannot read {key} from {self.root}: {err}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        check_prefix(prefix)
        base = self.root
        if not base.exists():
            return []
        # Walk only the deepest directory the prefix names, not the whole tree.
        start = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        if not start.exists():
            return []
        keys = []
        for path in start.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass
