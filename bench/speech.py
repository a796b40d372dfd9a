"""Synthetic benchmark speech: distinct sentences (espeak-ng) separated by pauses of varied length.

Every sentence is different, so no segment repeats and the cache cannot flatter spotkit's numbers.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from runtime.audio_codec import encode_flac
from runtime.media import SAMPLE_RATE, Pcm, decode_file

_SUBJECTS = ["The operator", "A spot node", "The scheduler", "Our finance team", "The old server",
             "A new engineer", "The translation model", "The storage account"]
_VERBS = ["moved", "counted", "checked", "cached", "requeued", "measured", "archived", "reviewed"]
_OBJECTS = ["forty two recordings", "the monthly invoice", "every interview from Tuesday",
            "a noisy podcast", "the quarterly board meeting", "nine hours of lectures",
            "the customer support calls", "a documentary about rivers"]
_ENDINGS = ["before lunch.", "during the night.", "after the eviction notice.", "in record time.",
            "without losing a single word.", "while the queue kept growing.", "on a cheap graphics card.",
            "and wrote a short report."]


def sentences(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        text = " ".join(rng.choice(part) for part in (_SUBJECTS, _VERBS, _OBJECTS, _ENDINGS))
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def make_speech(path: Path, min_seconds: float = 250.0, seed: int = 7) -> Path:
    """Write a FLAC of at least *min_seconds* (cached: reused if it exists)."""
    if path.exists():
        return path
    rng = random.Random(seed)
    pieces: list[np.ndarray] = []
    total = 0
    with tempfile.TemporaryDirectory() as work:
        for index, text in enumerate(sentences(400, seed)):
            wav = Path(work) / f"{index}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(rng.choice([140, 155, 170])),
                            "-w", str(wav), text], check=True, timeout=60)
            speech = decode_file(wav).samples
            pause = np.zeros(int(rng.uniform(0.4, 4.0) * SAMPLE_RATE), dtype=np.int16)
            pieces += [speech, pause]
            total += len(speech) + len(pause)
            if total >= min_seconds * SAMPLE_RATE:
                break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_flac(Pcm(np.concatenate(pieces))))
    return path
