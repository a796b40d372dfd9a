"""The embedded store's failure paths: a directory that turns read-only between the temp file and
the link (the agent-process test's ``chattr +i`` outage, here without root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.errors import StoreError
from runtime.store.file_store import FileStore


def _refuse(*_args: object, **_kwargs: object) -> None:
    raise PermissionError(1, "Operation not permitted")


@pytest.mark.parametrize("write", ["put", "put_if_absent"])
def test_a_directory_that_refuses_changes_is_a_store_error_not_a_crash(tmp_path: Path, write: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path / "store")
    store.ensure()
    # Once the temp file exists, the directory refuses the link/rename *and* the clean-up unlink.
    monkeypatch.setattr(os, "link", _refuse)
    monkeypatch.setattr(os, "replace", _refuse)
    monkeypatch.setattr(os, "unlink", _refuse)
    with pytest.raises(StoreError, match=r"cannot write results/x\.json"):
        getattr(store, write)("results/x.json", b"data")
    monkeypatch.undo()
    assert store.list("results/") == []  # the leftover temp file is not an object


def test_a_failed_write_leaves_no_temp_file_when_the_directory_allows_clean_up(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path / "store")
    monkeypatch.setattr(os, "replace", _refuse)
    with pytest.raises(StoreError):
        store.put("results/x.json", b"data")
    monkeypatch.undo()
    assert list((tmp_path / "store" / "results").iterdir()) == []
