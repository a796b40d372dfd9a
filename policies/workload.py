"""Work as the cost policies see it: jobs from a trace, turned into GPU-seconds and API dollars.

A trace is a CSV with the header ``timestamp,audio_seconds,tokens`` (ISO 8601 UTC timestamps): one
row per submitted job — its audio to transcribe and the tokens its translation produces. A job costs
``audio_seconds / audio_rtf + tokens / tokens_per_second`` seconds of one GPU, or its metered price
on the API. Every rate and price is an argument; nothing is assumed here.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runtime.errors import SpotkitError

HEADER = ["timestamp", "audio_seconds", "tokens"]


class TraceError(SpotkitError, ValueError):
    """A trace file that cannot be used, with the line and the reason."""


@dataclass(frozen=True)
class Arrival:
    at: float  # epoch seconds
    audio_seconds: float
    tokens: int


@dataclass(frozen=True)
class Rates:
    """How fast one GPU works and what the metered API charges."""

    audio_rtf: float  # audio seconds transcribed per GPU second (real-time factor)
    tokens_per_second: float  # translation tokens generated per GPU second
    api_price_per_audio_minute: float
    api_price_per_million_tokens: float

    def gpu_seconds(self, arrival: Arrival) -> float:
        return arrival.audio_seconds / self.audio_rtf + arrival.tokens / self.tokens_per_second

    def api_cost(self, arrival: Arrival) -> float:
        return (arrival.audio_seconds / 60 * self.api_price_per_audio_minute
                + arrival.tokens / 1e6 * self.api_price_per_million_tokens)


def parse_timestamp(text: str) -> float:
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def read_trace(path: Path) -> list[Arrival]:
    try:
        handle = path.open(newline="")
    except OSError as err:
        raise TraceError(f"{path}: cannot open ({err.strerror})") from None
    with handle:
        try:
            arrivals = _rows(path, csv.reader(handle))
        except UnicodeDecodeError:
            raise TraceError(f"{path}: not a text CSV file (expected header {','.join(HEADER)})") from None
        except (csv.Error, OSError) as err:
            raise TraceError(f"{path}: cannot read as CSV ({err})") from None
    if not arrivals:
        raise TraceError(f"{path}: no rows")
    return sorted(arrivals, key=lambda a: a.at)


def _rows(path: Path, reader: Iterator[list[str]]) -> list[Arrival]:
    header = next(reader, None)
    if header != HEADER:
        raise TraceError(f"{path}: header must be {','.join(HEADER)}, found {header}")
    arrivals = []
    for line, row in enumerate(reader, start=2):
        try:
            at, audio, tokens = parse_timestamp(row[0]), float(row[1]), int(row[2])
        except (IndexError, ValueError, OverflowError) as err:
            raise TraceError(f"{path}:{line}: {err}; expected ISO-8601-UTC,seconds,tokens") from None
        if not (math.isfinite(at) and math.isfinite(audio)) or audio < 0 or tokens < 0:
            raise TraceError(f"{path}:{line}: audio_seconds and tokens must be finite and not negative, "
                             f"got {row[1]!r}, {row[2]!r}")
        arrivals.append(Arrival(at, audio, tokens))
    return arrivals


def write_trace(path: Path, arrivals: list[Arrival]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for a in arrivals:
            stamp = datetime.fromtimestamp(a.at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            writer.writerow([stamp, f"{a.audio_seconds:.1f}", a.tokens])
