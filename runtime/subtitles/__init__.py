"""Subtitles people can read: cue limits, splitting a transcript into readable cues, and linting a track.

The engine's cues are Whisper's decoding segments — up to 30 s and hundreds of characters, which no
one can read on screen. `split.readable` re-cuts them on word timings within `CueLimits` (defaults
after Netflix's Timed Text Style Guide, docs/subtitles.md); `lint.lint` checks any SRT or WebVTT track,
ours or another tool's, against the same limits.
"""
