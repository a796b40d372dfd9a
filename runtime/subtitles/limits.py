"""The limits a readable cue keeps, in one place: what the splitter aims for and what the lint checks.

Defaults after Netflix's Timed Text Style Guide (General Requirements and the English (USA) guide):
at most 2 lines of 42 characters, a cue on screen between 5/6 s (20 frames at 24 fps) and 7 s,
adult reading speed up to 20 characters per second, and a gap of at least 2 frames between cues
(83 ms at 24 fps). The BBC's guidelines are stricter on line length (about 37 characters); set
``cue_max_line_chars`` for them. `runtime.config.Settings.cue_limits` builds them from the settings.
"""

from __future__ import annotations

from dataclasses import dataclass

CUE_STYLES = ("readable", "none")  # none: Whisper's own segments, one cue each (the output before readable cues)


@dataclass(frozen=True)
class CueLimits:
    max_line_chars: int = 42
    max_lines: int = 2
    max_seconds: float = 7.0
    min_seconds: float = 5 / 6
    max_chars_per_second: float = 20.0
    min_gap_seconds: float = 2 / 24

    @property
    def max_chars(self) -> int:
        return self.max_line_chars * self.max_lines
