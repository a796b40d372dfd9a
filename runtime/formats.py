"""Render assembled cues as SRT, WebVTT, JSON or plain text (deterministic output)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from runtime.jobs import SourceCue

FORMATS = ("srt", "vtt", "json", "txt")


def _clock(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render(cues: Sequence[SourceCue], fmt: str, job: str = "") -> str:
    if fmt == "srt":
        blocks = [f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{c.text}\n"
                  for i, c in enumerate(cues, 1)]
        return "\n".join(blocks)
    if fmt == "vtt":
        blocks = [f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n{c.text}\n" for c in cues]
        return "WEBVTT\n\n" + "\n".join(blocks)
    if fmt == "json":
        payload = {"job": job, "cues": [{"start": c.start, "end": c.end, "text": c.text,
                                         **({"words": c.words} if c.words else {})} for c in cues]}
        return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    if fmt == "txt":
        return "".join(c.text + "\n" for c in cues)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
