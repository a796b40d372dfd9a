"""The shipped demand traces, and how they were made (``python -m policies.traces``).

Synthetic, seeded, one 30-day month each (November 2026), jobs of a transcription-plus-translation
service; file lengths are log-normal (median ~25 min), translation output ~3.3 tokens per audio
second (about 200 per spoken minute, one target language):

* ``steady.csv`` — high volume around the clock: Poisson arrivals, ~55 jobs an hour.
* ``diurnal.csv`` — business hours: arrivals follow a daily curve peaking at 14:00 UTC at ~8× the
  night rate, weekends at a third of weekdays.
* ``sparse.csv`` — a trickle of small jobs (~1 an hour) plus a few large batch uploads a week
  (100-300 files within ten minutes).

They are not customer data; they exist so the policies can be compared on shapes that matter.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from pathlib import Path

from policies.workload import Arrival, write_trace

TRACES = Path(__file__).resolve().parent / "data" / "traces"
MONTH_START = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
MONTH = 30 * 86400


def _job(rng: random.Random, at: float, median_minutes: float = 25.0) -> Arrival:
    audio = min(4 * 3600.0, rng.lognormvariate(math.log(median_minutes * 60), 0.8))
    return Arrival(at, round(audio, 1), int(audio * 3.3))


def _poisson(rng: random.Random, rate_per_hour: float, start: float, end: float) -> list[float]:
    times: list[float] = []
    t = start
    while True:
        t += rng.expovariate(rate_per_hour / 3600)
        if t >= end:
            return times
        times.append(t)


def steady(seed: int = 1) -> list[Arrival]:
    rng = random.Random(seed)
    return [_job(rng, t) for t in _poisson(rng, 55, MONTH_START, MONTH_START + MONTH)]


def diurnal(seed: int = 2) -> list[Arrival]:
    rng = random.Random(seed)
    arrivals = []
    for hour in range(MONTH // 3600):
        start = MONTH_START + hour * 3600
        moment = datetime.fromtimestamp(start, tz=UTC)
        shape = 1 + 7 * max(0.0, math.cos((moment.hour - 14) / 24 * 2 * math.pi)) ** 2
        weekend = 1 / 3 if moment.weekday() >= 5 else 1.0
        arrivals += [_job(rng, t) for t in _poisson(rng, 12 * shape * weekend, start, start + 3600)]
    return arrivals


def sparse(seed: int = 3) -> list[Arrival]:
    rng = random.Random(seed)
    arrivals = [_job(rng, t, median_minutes=8) for t in _poisson(rng, 1, MONTH_START, MONTH_START + MONTH)]
    for burst in _poisson(rng, 3 / (7 * 24), MONTH_START, MONTH_START + MONTH):
        arrivals += [_job(rng, burst + rng.uniform(0, 600)) for _ in range(rng.randint(100, 300))]
    return sorted(arrivals, key=lambda a: a.at)


def flood(seed: int = 4, rate_per_hour: float = 300.0) -> list[Arrival]:
    """An office-hours month with a two-day flood (a backlog migration, a news event): the diurnal
    shape, plus *rate_per_hour* jobs an hour for 48 hours from day 10. Not shipped as a file (it is
    60,000+ jobs); `bench/policy` builds it, seeded."""
    rng = random.Random(seed)
    start = MONTH_START + 10 * 86400
    surge = [_job(rng, t) for t in _poisson(rng, rate_per_hour, start, start + 2 * 86400)]
    return sorted(diurnal(seed) + surge, key=lambda a: a.at)


def main() -> None:
    TRACES.mkdir(parents=True, exist_ok=True)
    for name, make in (("steady", steady), ("diurnal", diurnal), ("sparse", sparse)):
        arrivals = make()
        write_trace(TRACES / f"{name}.csv", arrivals)
        hours = sum(a.audio_seconds for a in arrivals) / 3600
        print(f"{name}: {len(arrivals)} jobs, {hours:.0f} audio hours")


if __name__ == "__main__":
    main()
