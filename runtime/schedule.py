"""When a job is due: priorities, their default deadlines, and deadline durations as people write them.

A job's deadline travels with its submission (`runtime.records.BacklogRecord`) and with each of its
segments (`runtime.work.WorkItem`); the controller plans against it. It is not part of a segment's
identity: the same audio due sooner is the same work.
"""

from __future__ import annotations

import math
import re

from runtime.errors import ConfigError

# Each priority's deadline when the submission names none.
PRIORITIES: dict[str, float] = {"high": 3600.0, "normal": 6 * 3600.0, "low": 24 * 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def check_priority(priority: str, where: str = "--priority") -> str:
    if priority not in PRIORITIES:
        raise ConfigError(f"{where} = {priority!r}: use one of {', '.join(PRIORITIES)}")
    return priority


def parse_duration(text: str, where: str = "--deadline") -> float:
    """``90m``, ``6h``, ``1.5d``, ``3600s`` → seconds; anything else (or zero, or past 90 days) is refused."""
    found = _DURATION.match(text or "")
    if not found:
        raise ConfigError(f"{where} = {text!r}: give a duration like 90m, 6h or 2d")
    seconds = float(found.group(1)) * _UNIT[found.group(2)]
    if not (math.isfinite(seconds) and 0 < seconds <= 90 * 86400):
        raise ConfigError(f"{where} = {text!r}: must be more than 0 and at most 90 days")
    return seconds


def deadline_for(submitted_at: float, priority: str, deadline: str = "") -> float:
    """The absolute deadline of a submission: its own duration, else its priority's default."""
    check_priority(priority)
    return submitted_at + (parse_duration(deadline) if deadline else PRIORITIES[priority])
