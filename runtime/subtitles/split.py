"""Re-cut a transcript into cues people can read, on the engine's word timings.

Whisper's cues are its decoding segments: often a whole 30 s window, hundreds of characters. Here the
track is one stream of words (each with its time), cut by dynamic programming into cues that keep
`CueLimits` — a cue fits its lines and lasts at most ``max_seconds`` by construction — at the best
places: a sentence end or a pause first, then a clause (a comma, before a conjunction or a
preposition), never after an article. The segmenter's removed silences are hard cuts: a cue never
runs across speech the segmenter joined. Then each cue's lines are balanced, and its end is moved
so it stays long enough to read (``min_seconds``, ``max_chars_per_second``) without running into
the next cue (``min_gap_seconds``).

The text is never changed: the cues' words, joined, are the transcript's words. Where a cue has no
word timings (a translation, a result made without them) its words are timed in proportion to their
length within the cue's own span — so a translated track starts from the source cues' timing and
is split again only inside each source cue's span.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from runtime.jobs import SourceCue
from runtime.media import SAMPLE_RATE
from runtime.subtitles.limits import CueLimits
from runtime.work import JobManifest

_SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")
_CLAUSE_END = (",", ";", ":", "—", "–", "、", "，")
_CLOSERS = "\"'»”’)]"
_ABBREVIATIONS = {"mr.", "mrs.", "ms.", "dr.", "st.", "e.g.", "i.e.", "etc.", "vs.", "no.", "jr.", "sr."}
_CONJUNCTIONS = {"and", "but", "or", "so", "because", "which", "that", "who", "when", "while", "if",
                 "although", "though", "whether", "where", "unless", "until", "since", "nor", "yet", "then"}
_PREPOSITIONS = {"in", "on", "at", "for", "with", "from", "of", "to", "by", "about", "into", "over", "after",
                 "before", "under", "between", "through", "during", "without", "against", "among"}
_ARTICLES = {"a", "an", "the", "my", "your", "his", "her", "our", "their", "its", "this", "these", "those"}


@dataclass(frozen=True)
class _Token:
    start: float
    end: float
    text: str
    cue_end: bool = False  # the engine's own cue ended here (Whisper ends its segments at sentences)


def removed_silences(manifest: JobManifest) -> list[tuple[float, float]]:
    """The source-time gaps the segmenter cut out between speech spans (sorted): no cue may span one."""
    spans = sorted((int(a), int(b)) for ref in manifest.segments for a, b in ref.spans)
    return [(end / SAMPLE_RATE, nxt / SAMPLE_RATE) for (_, end), (nxt, _) in itertools.pairwise(spans)
            if nxt > end]


def _tokens(cue: SourceCue) -> list[_Token]:
    words = cue.text.split()
    timed = [(float(w[0]), float(w[1]), str(w[2]).strip()) for w in cue.words or []  # type: ignore[arg-type]
             if str(w[2]).strip()]
    out: list[_Token] = []
    if timed and [w[2] for w in timed] == words:
        last = cue.start
        for start, end, text in timed:
            start = max(start, last)
            out.append(_Token(start, max(start, end), text))
            last = max(start, end)
        out = _spread_collapsed(out, cue.end)
    else:  # no (matching) word timings: each word its share of the cue's span, by length
        out = _share(words, cue.start, cue.end)
    if out:
        out[-1] = _Token(out[-1].start, out[-1].end, out[-1].text, True)
    return out


def _share(words: Sequence[str], start: float, end: float) -> list[_Token]:
    """*words* timed in proportion to their length across [start, end]."""
    total = sum(len(w) + 1 for w in words)
    out, done = [], 0
    for text in words:
        begin = start + (end - start) * done / total
        done += len(text) + 1
        out.append(_Token(begin, start + (end - start) * (done - 1) / total, text))
    return out


COLLAPSED_SECONDS = 0.02


def _spread_collapsed(tokens: list[_Token], cue_end: float) -> list[_Token]:
    """Words Whisper timed at one instant (a run of zero-length words, as in a repetition loop) get
    their share of the time up to the next word, so no cue is cut between two words said at once."""
    out: list[_Token] = []
    k = 0
    while k < len(tokens):
        run = k
        while run < len(tokens) and tokens[run].end - tokens[run].start < COLLAPSED_SECONDS:
            run += 1
        if run - k >= 2:
            until = tokens[run].start if run < len(tokens) else max(cue_end, tokens[run - 1].end)
            out += _share([t.text for t in tokens[k:run]], tokens[k].start, max(until, tokens[k].start))
            k = run
        else:
            out.append(tokens[k])
            k += 1
    return out


def wrap(words: Sequence[str], width: int) -> list[list[str]]:
    """Greedy wrap: the fewest lines of at most *width* characters (a longer word gets its own line)."""
    lines: list[list[str]] = []
    used = 0
    for word in words:
        if lines and used + 1 + len(word) <= width:
            lines[-1].append(word)
            used += 1 + len(word)
        else:
            lines.append([word])
            used = len(word)
    return lines


def _break_cost(tokens: Sequence[_Token], j: int, gap_needed: float) -> float:
    """How bad a cut between tokens j-1 and j is for the reader: 0 at a sentence end or a pause."""
    if j >= len(tokens):
        return 0.0
    prev, nxt = tokens[j - 1].text, tokens[j].text
    bare = prev.rstrip(_CLOSERS)
    if prev.lower() in _ARTICLES:
        return 8.0
    if bare.endswith(_SENTENCE_END) and prev.lower() not in _ABBREVIATIONS:
        return 0.0
    if tokens[j].start - tokens[j - 1].end >= max(0.5, gap_needed):
        return 0.0
    if tokens[j - 1].cue_end:
        return 0.5
    if bare.endswith(_CLAUSE_END):
        return 1.0
    if nxt.lower().strip(_CLOSERS) in _CONJUNCTIONS:
        return 2.0
    if nxt.lower() in _PREPOSITIONS:
        return 2.5
    return 4.0


def _line_break_cost(words: Sequence[str], k: int) -> float:
    """A line break before words[k]: after punctuation, before a conjunction or preposition (Netflix)."""
    prev, nxt = words[k - 1], words[k].lower()
    if prev.lower() in _ARTICLES:
        return 8.0
    if prev.rstrip(_CLOSERS).endswith(_SENTENCE_END + _CLAUSE_END):
        return 0.0
    if nxt in _CONJUNCTIONS:
        return 1.0
    if nxt in _PREPOSITIONS:
        return 1.5
    return 3.0


def balance(words: Sequence[str], limits: CueLimits) -> list[str]:
    """The cue's lines: one if it fits, else as few as fit, of even length, broken at good places."""
    needed = len(wrap(words, limits.max_line_chars))
    if needed <= 1:
        return [" ".join(words)]
    target = (sum(len(w) for w in words) + len(words) - needed) / needed
    # best[k][m]: the cheapest way to set words[:k] on m lines; remembers where the last line began.
    inf = float("inf")
    best = [[(inf, 0)] * (needed + 1) for _ in range(len(words) + 1)]
    best[0][0] = (0.0, 0)
    for k in range(1, len(words) + 1):
        for m in range(1, needed + 1):
            for i in range(k - 1, -1, -1):
                width = sum(len(w) for w in words[i:k]) + (k - i - 1)
                if width > limits.max_line_chars and k - i > 1:
                    break
                prior = best[i][m - 1][0]
                if prior == inf:
                    continue
                cost = prior + abs(width - target) / 4 + (_line_break_cost(words, i) if i else 0.0)
                if cost < best[k][m][0]:
                    best[k][m] = (cost, i)
    lines: list[str] = []
    k, m = len(words), needed
    while k > 0 and m > 0:
        i = best[k][m][1]
        lines.append(" ".join(words[i:k]))
        k, m = i, m - 1
    return lines[::-1] if k == 0 else [" ".join(line) for line in wrap(words, limits.max_line_chars)]


def _in_order(tokens: list[_Token]) -> list[_Token]:
    """Words in time order: an engine cue that starts before the previous one ends (a window's tail
    decoded again overlaps it) has its words moved to after that cue's last word."""
    out: list[_Token] = []
    last = 0.0
    for token in tokens:
        start = max(token.start, last)
        out.append(_Token(start, max(start, token.end), token.text, token.cue_end))
        last = max(start, token.end)
    return out


def _off_silences(tokens: list[_Token], silences: Sequence[tuple[float, float]]) -> list[_Token]:
    """A word timed across a removed silence (its timing straddles the join of two speech spans) is
    said on one side of it: kept on the side that holds more of its time."""
    starts = [a for a, _ in silences]
    out = []
    for token in tokens:
        k = bisect.bisect_right(starts, token.start)
        if k < len(silences) and silences[k][1] < token.end:
            a, b = silences[k]
            token = (_Token(token.start, a, token.text, token.cue_end) if a - token.start >= token.end - b
                     else _Token(b, token.end, token.text, token.cue_end))
        out.append(token)
    return out


def _forced(tokens: Sequence[_Token], silences: Sequence[tuple[float, float]]) -> set[int]:
    """Indices j where a cue must start: a removed silence lies between tokens j-1 and j."""
    starts = [a for a, _ in silences]
    forced = set()
    for j in range(1, len(tokens)):
        left = (tokens[j - 1].start + tokens[j - 1].end) / 2
        right = (tokens[j].start + tokens[j].end) / 2
        k = bisect.bisect_left(starts, right)  # silences that begin before the next word's middle
        if k and silences[k - 1][1] > left:
            forced.add(j)
    return forced


def _partition(tokens: Sequence[_Token], forced: set[int], limits: CueLimits) -> list[tuple[int, int]]:
    """The cheapest cut of *tokens* into cues that fit (dynamic programming over cut points)."""
    n = len(tokens)
    inf = float("inf")
    best: list[tuple[float, int]] = [(0.0, 0)] + [(inf, 0)] * n
    for j in range(1, n + 1):
        after = tokens[j].start - tokens[j - 1].end if j < n else limits.max_seconds
        cut = _break_cost(tokens, j, limits.min_gap_seconds)
        chars = -1
        for i in range(j - 1, -1, -1):
            chars += len(tokens[i].text) + 1
            duration = tokens[j - 1].end - tokens[i].start
            single = i == j - 1
            if not single and (chars > limits.max_chars or duration > limits.max_seconds
                               or len(wrap([t.text for t in tokens[i:j]], limits.max_line_chars))
                               > limits.max_lines):
                break
            room = min(limits.max_seconds, duration + after - limits.min_gap_seconds)  # as the timing pass ends it
            cost = best[i][0] + 1.0 + cut
            if room < limits.min_seconds:
                cost += 2.0
            if chars > limits.max_line_chars:
                cost += 0.3
            cps = chars / max(room, 1e-3)
            if cps > limits.max_chars_per_second:  # only where no cut can help: speech too fast to read
                cost += 20.0 + 40.0 * (cps - limits.max_chars_per_second) / limits.max_chars_per_second
            if cost < best[j][0]:
                best[j] = (cost, i)
            if i in forced:
                break
    cuts: list[tuple[int, int]] = []
    j = n
    while j > 0:
        cuts.append((best[j][1], j))
        j = best[j][1]
    return cuts[::-1]


def readable(cues: Sequence[SourceCue], silences: Sequence[tuple[float, float]] = (),
             limits: CueLimits | None = None) -> list[SourceCue]:
    """*cues* (in source time order) re-cut into readable cues; their words joined are the same text."""
    limits = limits or CueLimits()
    silences = sorted(silences)
    tokens = _off_silences(_in_order([token for cue in cues for token in _tokens(cue)]), silences)
    if not tokens:
        return []
    cuts = _partition(tokens, _forced(tokens, silences), limits)
    texts = [balance([t.text for t in tokens[i:j]], limits) for i, j in cuts]
    starts = [round(tokens[i].start * 1000) for i, _ in cuts]
    for k in range(1, len(starts)):
        starts[k] = max(starts[k], starts[k - 1] + 1)
    gap, shortest = round(limits.min_gap_seconds * 1000 + 0.4999), round(limits.min_seconds * 1000 + 0.4999)
    out: list[SourceCue] = []
    for k, ((_, j), lines) in enumerate(zip(cuts, texts, strict=True)):
        start, spoken = starts[k], round(tokens[j - 1].end * 1000)
        chars = sum(len(line) for line in lines) + len(lines) - 1
        needed = max(shortest, int(-(-chars * 1000 // limits.max_chars_per_second)))
        end = min(max(spoken, start + needed), start + round(limits.max_seconds * 1000))
        if k + 1 < len(starts):
            end = min(end, starts[k + 1] - gap)
        out.append(SourceCue(start / 1000, max(end, start + 1) / 1000, "\n".join(lines)))
    return out
