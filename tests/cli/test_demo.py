"""`spotkit demo` end to end (what `make demo` runs), so the demo cannot rot unnoticed."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from runtime.demo import run_demo


def test_demo_runs_twice_with_cache_hits(tmp_path: Path) -> None:
    out = io.StringIO()
    outcome = run_demo(tmp_path / "demo", nodes=2, console=Console(file=out, width=120))
    text = out.getvalue()
    assert outcome.ok, text
    first, second = outcome.first, outcome.second
    segments = first.report.segments
    assert first.outcomes == {"done": segments}
    assert second.outcomes == {"cache-hit": segments}
    assert "00:00:02," in first.transcript  # the first sentence starts after 2.6 s of silence
    [eviction] = first.evictions  # local-1 was preempted mid-run, drained and acknowledged
    assert eviction["node"] == "local-1" and eviction["event_type"] == "Preempt"
    assert eviction["will_acknowledge"] and eviction["drained_at"] > eviction["seen_at"]
    assert second.evictions == []
    assert first.transcript in text and "identical transcript" in text
