"""Audio that ships with spotkit (made by `make_samples.sh`): the demo's one-minute sample."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def demo_sample() -> Path:
    """Synthetic speech between long silences: what `make demo`, the chaos runs and the benchmarks submit."""
    return Path(str(resources.files("runtime") / "samples" / "demo.flac"))
