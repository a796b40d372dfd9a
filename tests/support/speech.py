"""Speech the tests make themselves (espeak-ng), and word counts to compare transcripts by."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from bench.speech import sentences


def run_on_speech(path: Path, count: int = 14, seed: int = 3) -> Path:
    """About a minute of speech without a pause long enough for the VAD to cut: it is packed into
    segments that end mid-sentence, right at the 30 s window — where a dropped tail loses words."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is needed to make the test speech (make test installs it)")
    text = " and ".join(t.rstrip(".") for t in sentences(count, seed)) + "."
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), text], check=True, timeout=120)
    return path


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def recall(reference: str, hypothesis: str) -> float:
    """Share of the reference's words (with repeats) that the hypothesis has too."""
    left: dict[str, int] = {}
    for word in words(hypothesis):
        left[word] = left.get(word, 0) + 1
    found = 0
    ref = words(reference)
    for word in ref:
        if left.get(word, 0) > 0:
            left[word] -= 1
            found += 1
    return found / len(ref) if ref else 1.0


# English speech from faster-whisper's test data (MIT), where the checkout has the shared folder beside
# it: real voices for the subtitle tests, added to the synthetic speech they always have.
# (file, seconds of English from its start): multilingual.mp3 reads a licence in English for 29.5 s,
# then in German.
SHARED_ENGLISH = (("jfk.flac", 11.0), ("multilingual.mp3", 29.5), ("hotwords.mp3", 4.0),
                  ("stereo_diarization.wav", 5.0))


def shared_english(repo: Path) -> list[tuple[Path, float]]:
    for folder in (repo.parent / "shared" / "data", repo.parent.parent / "shared" / "data"):
        found = [(folder / name, seconds) for name, seconds in SHARED_ENGLISH if (folder / name).is_file()]
        if found:
            return found
    return []
