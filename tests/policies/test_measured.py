"""Measured throughput, utilization and eviction rate from real usage and eviction records."""

from __future__ import annotations

from pathlib import Path

from policies.measured import measure_boots, measure_fleet, measure_nodes
from runtime.records import UsageRecord, read_usage
from runtime.store.file_store import FileStore
from runtime.usage import UsageLog


def record(node: str, outcome: str, audio: float, gpu: float, tokens: int = 0) -> UsageRecord:
    return UsageRecord(node, "job", "seg", "transcribe", audio, 0, tokens, "faster-whisper", "large-v3",
                       1_800_000_000.0, 1_800_000_010.0, outcome, gpu_seconds=gpu)


def test_throughput_and_utilization_per_node(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    log = UsageLog(store, "n1", lambda: 1_800_000_000.0)
    for r in [record("n1", "done", 30, 0.6, 90), record("n1", "done", 30, 0.6, 110), record("n1", "cache-hit", 30, 0),
              record("n1", "requeued", 30, 0.3), record("n2", "done", 60, 2.0)]:
        log.add(r)
    log.flush()  # through the store, as the agents write them
    nodes = measure_nodes(read_usage(store))
    n1 = nodes["n1"]
    assert (n1.segments_done, n1.cache_hits, n1.requeued) == (2, 1, 1)
    assert abs(n1.audio_rtf - 60 / 1.2) < 1e-9 and abs(n1.tokens_per_second - 200 / 1.2) < 1e-9
    assert abs(n1.utilization(paid_seconds=3.0) - 0.5) < 1e-9
    assert nodes["n2"].audio_rtf == 30.0 and nodes["n2"].utilization(0) == 0.0


def test_fleet_eviction_rate_counts_spot_evictions_only() -> None:
    records = [record("n1", "done", 100, 2.0), record("n1", "requeued", 10, 0.5)]
    evictions = [{"origin": "imds", "wasted_gpu_seconds": 0.5}, {"origin": "signal", "wasted_gpu_seconds": 0.0},
                 {"origin": "imds", "wasted_gpu_seconds": 1.5}]
    fleet = measure_fleet(records, evictions, paid_node_seconds=4 * 3600)
    assert fleet.evictions == 2 and fleet.evictions_per_hour == 0.5
    assert fleet.wasted_seconds_per_eviction == 1.0 and fleet.audio_rtf == 50.0


def test_boot_to_ready_warm_and_cold() -> None:
    boots: list[dict[str, object]] = [{"boot_seconds": 95.0, "cache_dir_had_results": True},
             {"boot_seconds": 105.0, "cache_dir_had_results": True},
             {"boot_seconds": 640.0, "cache_dir_had_results": False},
             {"boot_seconds": -1, "cache_dir_had_results": False}]  # a restart, not a boot
    measure = measure_boots(boots)
    assert (measure.warm_median_seconds, measure.cold_median_seconds) == (100.0, 640.0)
    assert (measure.warm, measure.cold) == (2, 1)
