"""One contract, every store backend: local disk and Azure Blob Storage (Azurite)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from runtime.errors import NotFound, StoreError
from runtime.store.base import ObjectStore


def test_put_get_exists_delete(store: ObjectStore) -> None:
    assert not store.exists("a/b.json")
    store.put("a/b.json", b"one")
    assert store.get("a/b.json") == b"one"
    store.put("a/b.json", b"two")
    assert store.get("a/b.json") == b"two"
    store.delete("a/b.json")
    store.delete("a/b.json")  # already gone is fine
    assert not store.exists("a/b.json")


def test_get_missing_raises_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFound):
        store.get("nope/missing.json")


def test_put_if_absent_first_writer_wins(store: ObjectStore) -> None:
    assert store.put_if_absent("results/x.json", b"first") is True
    assert store.put_if_absent("results/x.json", b"second") is False
    assert store.get("results/x.json") == b"first"


def test_put_if_absent_concurrent_writers_one_winner(store: ObjectStore) -> None:
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(lambda i: store.put_if_absent("race/k", f"w{i}".encode()), range(8)))
    assert wins.count(True) == 1
    assert store.get("race/k") == f"w{wins.index(True)}".encode()


def test_list_by_prefix_sorted(store: ObjectStore) -> None:
    for key in ("usage/day=2026-11-02/n/b", "usage/day=2026-11-01/n/a", "heartbeats/n.json"):
        store.put(key, b"x")
    assert store.list("usage/") == ["usage/day=2026-11-01/n/a", "usage/day=2026-11-02/n/b"]
    assert store.list("usage/day=2026-11-02") == ["usage/day=2026-11-02/n/b"]
    assert store.list("nothing/") == []


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/../b", "sp ace", ""])
def test_invalid_keys_rejected(store: ObjectStore, key: str) -> None:
    with pytest.raises(StoreError, match="invalid store key"):
        store.put(key, b"x")
