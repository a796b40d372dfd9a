"""Readable cues and the lint, on hand-built transcripts: the limits hold, no word changes, silences
the segmenter removed are never spanned, and the lint finds each kind of unreadable cue."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

from bench.speech import sentences
from runtime.formats import render
from runtime.jobs import SourceCue
from runtime.subtitles.limits import CueLimits
from runtime.subtitles.lint import lint, parse_track
from runtime.subtitles.split import balance, readable

HAND_MADE = """1
00:00:01,000 --> 00:00:31,000
This cue stays on screen for half a minute.

2
00:00:32,000 --> 00:00:36,000
One line,
two lines,
three lines.

3
00:00:37,000 --> 00:00:39,000
Sixty characters in two seconds:
thirty a second, much too fast.

4
00:00:40,000 --> 00:00:42,000
A <i>readable</i> cue.
"""


def timed_cue(text: str, start: float, chars_per_second: float = 15.0) -> SourceCue:
    """One engine cue with word timings, spoken at an even *chars_per_second* (a word and its space)."""
    words: list[list[object]] = []
    at = start
    for word in text.split():
        words.append([round(at, 3), round(at + len(word) / chars_per_second, 3), word])
        at += (len(word) + 1) / chars_per_second
    return SourceCue(start, float(words[-1][1]), text, words)  # type: ignore[arg-type]


def words_of(cues: list[SourceCue]) -> list[str]:
    return " ".join(c.text for c in cues).split()


def test_a_half_minute_cue_becomes_readable_cues_with_the_same_words() -> None:
    """The newcomer's 29.4 s, 480-character cue: cut into cues every rule of the lint accepts."""
    text = " ".join(sentences(7, seed=5))  # 482 characters in 29.4 s: 16 a second
    long = timed_cue(text, 3.0, len(text) / 29.4)
    assert long.end - long.start > 29 and len(text) > 450
    cues = readable([long])
    assert len(cues) > 6 and words_of(cues) == text.split()
    track = parse_track(render(cues, "srt"))
    assert lint(track, CueLimits()) == []
    assert any(len(c.lines) == 2 for c in track)  # lines are used, and balanced:
    for cue in track:
        if len(cue.lines) == 2:
            assert abs(len(cue.lines[0]) - len(cue.lines[1])) <= 20


def test_cues_break_at_sentence_ends_when_they_can() -> None:
    cue = timed_cue("The operator moved forty two recordings before lunch. A spot node checked the "
                    "monthly invoice during the night.", 0.0)
    assert [c.text.replace("\n", " ") for c in readable([cue])] == [
        "The operator moved forty two recordings before lunch.",
        "A spot node checked the monthly invoice during the night."]


def test_no_cue_spans_a_silence_the_segmenter_removed() -> None:
    """Words on both sides of a removed silence (10.0–12.0 s) within one engine cue, one of them timed
    across it: the cut falls at the silence and the straddling word stays on its side."""
    words: list[list[object]] = [[8.0, 8.4, "Short"], [8.4, 8.8, "words"], [8.8, 9.6, "here,"],
                                 [9.6, 10.1, "then"], [12.0, 12.4, "more"], [12.4, 12.9, "after"],
                                 [12.9, 13.6, "the"], [13.6, 14.4, "pause."]]
    words[3] = [9.6, 12.3, "then"]  # timed across the silence: 0.4 s before it, 0.3 s after
    cue = SourceCue(8.0, 14.4, "Short words here, then more after the pause.", words)
    cues = readable([cue], [(10.0, 12.0)])
    assert words_of(cues) == cue.text.split()
    assert all(not (c.start < 10.0 and c.end > 12.0) for c in cues)
    assert [c.text.replace("\n", " ") for c in cues] == ["Short words here, then", "more after the pause."]


def test_a_translation_is_split_within_its_source_cues_span() -> None:
    """No word timings: the translated text is timed by length inside its source cue and cut there."""
    source = SourceCue(20.0, 32.0, "Die Windkraft im Norden und die Sonnenenergie im Süden liefern inzwischen "
                                   "fast die Hälfte unseres Stroms, trotzdem bleibt viel zu tun, denn die Netze "
                                   "müssen ausgebaut werden.")
    cues = readable([source])
    assert len(cues) >= 2 and words_of(cues) == source.text.split()
    assert all(20.0 <= c.start < 32.0 for c in cues) and cues[0].start == 20.0
    assert lint(parse_track(render(cues, "vtt")), CueLimits()) == []


def test_balanced_lines_break_after_punctuation() -> None:
    lines = balance("We moved the archive last night, and nothing was lost on the way".split(), CueLimits())
    assert lines == ["We moved the archive last night,", "and nothing was lost on the way"]


def test_the_lint_flags_a_long_cue_a_three_line_cue_and_a_fast_cue() -> None:
    found = lint(parse_track(HAND_MADE), CueLimits())
    assert {(v.cue, v.rule) for v in found} == {(1, "duration-max"), (1, "line-chars"), (2, "lines"),
                                                 (3, "reading-speed")}
    fast = next(v for v in found if v.rule == "reading-speed")
    assert fast.value == 32.0 and fast.limit == 20  # 64 characters (lines joined by a space) in 2 s


def test_the_lint_reads_webvtt_with_headers_notes_and_overlaps() -> None:
    vtt = ("WEBVTT - made elsewhere\n\nNOTE a comment\n\nintro\n00:01.000 --> 00:03.000 align:start\n"
           "<c.yellow>Hello</c> there.\n\n00:02.900 --> 00:04.500\n{\\an8}Overlapping cue.\n")
    track = parse_track(vtt)
    assert [(c.start, c.end, c.lines) for c in track] == [(1.0, 3.0, ["Hello there."]),
                                                          (2.9, 4.5, ["Overlapping cue."])]
    assert [(v.cue, v.rule, v.value) for v in lint(track, CueLimits())] == [(1, "gap", -0.1)]


def spotkit(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spotkit", "--home", str(tmp_path / "home"), *args],
                          capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})


def test_subtitles_lint_command(tmp_path: Path) -> None:
    bad, good, junk = tmp_path / "bad.srt", tmp_path / "good.vtt", tmp_path / "notes.srt"
    bad.write_text(HAND_MADE)
    good.write_text(render(readable([timed_cue(" ".join(sentences(6)), 0.0)]), "vtt"))
    junk.write_text("just some notes\n")
    flagged = spotkit(tmp_path, "subtitles", "lint", str(bad))
    assert flagged.returncode == 1 and "cue 1 at 00:00:01.000 lasts 30.00 s (at most 7 s)" in flagged.stdout
    assert "cue 2 at 00:00:32.000 has 3 lines (at most 2)" in flagged.stdout
    assert "4 cues, 3 over the limits" in flagged.stdout
    report = json.loads(spotkit(tmp_path, "subtitles", "lint", str(bad), "--json").stdout)
    assert report["cues"] == 4 and {v["rule"] for v in report["violations"]} >= {"duration-max", "lines",
                                                                                  "reading-speed"}
    clean = spotkit(tmp_path, "subtitles", "lint", str(good))
    assert clean.returncode == 0 and "(all readable)" in clean.stdout
    for path in (junk, tmp_path / "missing.srt"):
        refused = spotkit(tmp_path, "subtitles", "lint", str(path))
        assert refused.returncode == 1 and refused.stderr.startswith("error:") and "Traceback" not in refused.stderr


def test_overlapping_engine_cues_still_give_cues_in_order() -> None:
    """A window's tail decoded again can start before the previous cue ends: the cues stay in order."""
    first = timed_cue("The scheduler archived the quarterly board meeting during the night.", 10.0)
    second = timed_cue("A new engineer reviewed a documentary about rivers in record time.", first.end - 1.5)
    cues = readable([first, second])
    assert words_of(cues) == (first.text + " " + second.text).split()
    assert all(a.end + 2 / 24 - 0.0005 <= b.start for a, b in itertools.pairwise(cues))
