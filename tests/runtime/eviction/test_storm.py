"""Fleet-wide eviction alerts from the controller: a storm pages once for all its evictions, and the
digest mode replaces the page per eviction with one message a day."""

from __future__ import annotations

import time
from pathlib import Path

from runtime.eviction.alerts import Alerter
from runtime.eviction.decision import DrainPolicy, NodeView, StormPolicy, react, storm
from runtime.eviction.events import InterruptionEvent
from runtime.records import EvictionRecord, dump
from runtime.store.file_store import FileStore
from spotkit.controller.eviction_alerts import EvictionAlerts
from tests.runtime.eviction.conftest import Webhook

NOW = 1_800_000_000.0
POLICY = StormPolicy(count=3, window_seconds=3600)


def eviction(node: str, seen_at: float, origin: str = "imds", requeued: int = 2) -> EvictionRecord:
    return EvictionRecord(node, f"ev-{node}-{seen_at:.0f}", "Preempt" if origin == "imds" else "Sigterm", origin,
                          seen_at, seen_at + 30, 30.0, seen_at, requeued=requeued)


def test_a_storm_is_enough_spot_evictions_within_the_window() -> None:
    two = [eviction("a", NOW - 60), eviction("b", NOW - 120)]
    assert storm(two, NOW, POLICY) == []
    old = eviction("c", NOW - 4000)  # outside the window
    signal = eviction("d", NOW - 30, origin="signal")  # a routine stop is not the cloud's doing
    assert storm([*two, old, signal], NOW, POLICY) == []
    third = eviction("c", NOW - 10)
    assert [e.node for e in storm([*two, old, signal, third], NOW, POLICY)] == ["b", "a", "c"]


def store_with(tmp_path: Path, records: list[EvictionRecord]) -> FileStore:
    store = FileStore(tmp_path / "store")
    for record in records:
        store.put(record.key(), dump(record))
    return store


def test_the_controller_pages_a_storm_once_per_window(tmp_path: Path, webhook: Webhook) -> None:
    now = time.time()
    store = store_with(tmp_path, [eviction(n, now - 60 * i) for i, n in enumerate(("s1", "s2", "s3", "s1"))])
    alerter = Alerter(webhook.url)
    alerts = EvictionAlerts(store, alerter, POLICY)
    assert alerts.check(now) == ["eviction-storm"]
    assert alerts.check(now + 5) == []  # the same storm, the next round: no second page
    alerter.wait()
    [page] = webhook.received
    assert page["event"] == "eviction-storm" and "4 spot evictions" in str(page["text"])
    assert "s1 ×2" in str(page["text"]) and str(page["runbook"]).endswith("/eviction-storm.md")
    assert len(page["evictions"]) == 4  # type: ignore[arg-type]


def test_digest_mode_sends_yesterday_once_and_no_single_eviction_pages(tmp_path: Path, webhook: Webhook) -> None:
    now = time.time()
    yesterday = now // 86400 * 86400 - 43200  # yesterday's noon (UTC)
    store = store_with(tmp_path, [eviction("s1", yesterday), eviction("s2", yesterday + 5, requeued=7),
                                  eviction("s3", yesterday + 9, origin="signal")])
    alerter = Alerter(webhook.url)
    alerts = EvictionAlerts(store, alerter, POLICY, digest=True)
    sent = alerts.check(now)
    assert sent == ["eviction-digest"] and alerts.check(now + 60) == []
    alerter.wait()
    [digest] = webhook.received
    assert "2 spot evictions on 2 nodes, 9 segments requeued" in str(digest["text"])
    preempt = InterruptionEvent("e1", "Preempt", "Scheduled", NOW + 30, ("vm",), origin="imds")
    assert react([preempt], NodeView(NOW), DrainPolicy()).page
    assert not react([preempt], NodeView(NOW), DrainPolicy(page_each=False)).page  # digest: recorded only
