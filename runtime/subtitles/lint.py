"""Check any SRT or WebVTT track — ours or another tool's — against `CueLimits`.

What counts: a cue's duration (end − start), its lines and each line's characters, its reading
speed (characters, lines joined by one space, per second on screen), and the gap to the next cue
(a negative gap is an overlap). Markup is not text: ``<i>``, ``<c.x>``, ``{\\an8}`` are removed
before counting. Times are compared to the millisecond a track is written in.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from runtime.errors import SpotkitError
from runtime.subtitles.limits import CueLimits


@dataclass(frozen=True)
class TrackCue:
    index: int  # 1-based position in the track
    start: float
    end: float
    lines: list[str]


@dataclass(frozen=True)
class Violation:
    cue: int  # 1-based position in the track
    start: float
    rule: str  # duration-max | duration-min | lines | line-chars | reading-speed | gap
    value: float
    limit: float
    text: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        what = {"duration-max": f"lasts {self.value:.2f} s (at most {self.limit:g} s)",
                "duration-min": f"lasts {self.value:.2f} s (at least {self.limit:.3g} s)",
                "lines": f"has {self.value:g} lines (at most {self.limit:g})",
                "line-chars": f"has a line of {self.value:g} characters (at most {self.limit:g})",
                "reading-speed": f"reads at {self.value:.1f} characters/s (at most {self.limit:g})",
                "gap": (f"overlaps the next cue by {-self.value:.3f} s" if self.value < 0 else
                        f"is {self.value:.3f} s before the next cue (at least {self.limit:.3f} s)")}[self.rule]
        return f"cue {self.cue} at {_clock(self.start)} {what}: {self.text[:60]!r}"


def _clock(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_MARKUP = re.compile(r"<[^>]*>|\{\\[^}]*\}")


def _seconds(h: str | None, m: str, s: str, ms: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def parse_track(text: str, name: str = "track") -> list[TrackCue]:
    """The cues of an SRT or WebVTT document; `SpotkitError` naming the line if it is neither."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cues: list[TrackCue] = []
    k = 0
    while k < len(lines):
        found = _TIMING.match(lines[k])
        if not found:
            k += 1
            continue
        g = found.groups()
        start, end = _seconds(*g[:4]), _seconds(*g[4:])
        body: list[str] = []
        k += 1
        while k < len(lines) and lines[k].strip() and not _TIMING.match(lines[k]):
            body.append(lines[k])
            k += 1
        cleaned = [_MARKUP.sub("", line).strip() for line in body]
        cues.append(TrackCue(len(cues) + 1, start, end, [line for line in cleaned if line]))
    if not cues and text.strip():
        raise SpotkitError(f"{name}: no cue timings found (lines like 00:00:01,000 --> 00:00:02,500); "
                           "is it an SRT or WebVTT file?")
    return cues


def lint(cues: list[TrackCue], limits: CueLimits) -> list[Violation]:
    """Every way each cue breaks the limits, in track order (a cue may break several)."""
    eps = 0.0005  # tracks are written to the millisecond
    found: list[Violation] = []
    for k, cue in enumerate(cues):
        text = " ".join(cue.lines)

        def add(rule: str, value: float, limit: float, cue: TrackCue = cue, text: str = text) -> None:
            found.append(Violation(cue.index, cue.start, rule, round(value, 3), round(limit, 3), text))

        duration = cue.end - cue.start
        if duration > limits.max_seconds + eps:
            add("duration-max", duration, limits.max_seconds)
        if duration < limits.min_seconds - eps:
            add("duration-min", duration, limits.min_seconds)
        if len(cue.lines) > limits.max_lines:
            add("lines", len(cue.lines), limits.max_lines)
        longest = max((len(line) for line in cue.lines), default=0)
        if longest > limits.max_line_chars:
            add("line-chars", longest, limits.max_line_chars)
        if duration > 0 and len(text) / duration > limits.max_chars_per_second + 0.05:
            add("reading-speed", len(text) / duration, limits.max_chars_per_second)
        if k + 1 < len(cues):
            gap = cues[k + 1].start - cue.end
            if gap < limits.min_gap_seconds - eps:
                add("gap", gap, limits.min_gap_seconds)
    return found
