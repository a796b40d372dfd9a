"""faster-whisper behind the Transcriber interface: no speech lost at a segment's end, and results
keyed by the model's content (its revision)."""

from __future__ import annotations

from pathlib import Path

import pytest
from faster_whisper import WhisperModel

from runtime.engines.base import AudioItem, Transcriber
from runtime.engines.revision import FASTER_WHISPER_DECODING, fingerprint, folder_revision, transcriber_revision
from runtime.media import decode_file
from runtime.models import publish, resolve_model_path
from runtime.segmenter import find_speech, pack_spans
from runtime.store.file_store import FileStore
from runtime.work import TaskOptions, segment_id
from tests.conftest import REPO
from tests.support.speech import recall, run_on_speech

SHARED_SPEECH = REPO.parent / "shared" / "data" / "multilingual.mp3"  # real speech, where the checkout has it


def segments_of(audio: Path, seconds: float = 30.0) -> list[AudioItem]:
    """The audio as spotkit packs it: speech-only segments of up to *seconds*."""
    pcm = decode_file(audio)
    return [AudioItem(segment_id(p.audio(pcm), TaskOptions()), p.audio(pcm), TaskOptions())
            for p in pack_spans(find_speech(pcm, seconds), seconds)]


def sequential(items: list[AudioItem]) -> list[str]:
    """Plain sequential faster-whisper on each segment's own audio: it decodes again from where a
    window's last finished sentence ended, so it keeps what runs up to the segment's end."""
    model = WhisperModel(resolve_model_path("tiny.en", ""), device="cpu", compute_type="int8", cpu_threads=2)
    return [" ".join(s.text for s in model.transcribe(i.pcm.as_float(), beam_size=5, language="en")[0])
            for i in items]


def test_speech_up_to_a_segments_end_is_not_dropped(tmp_path: Path, whisper: Transcriber) -> None:
    """Run-on speech packed into segments of ~29 s that end mid-sentence: the batched pipeline used to
    drop each one's last, unfinished sentence (recall about 0.85); spotkit keeps what sequential keeps."""
    items = segments_of(run_on_speech(tmp_path / "run-on.wav"))
    assert max(i.pcm.seconds for i in items) > 28  # the case that matters: segments filled to the window
    ours = [r.text for r in whisper.transcribe_batch(items)]
    assert recall(" ".join(sequential(items)), " ".join(ours)) >= 0.97


@pytest.mark.skipif(not SHARED_SPEECH.is_file(), reason="the real-speech sample lives outside the repository")
def test_real_speech_to_the_window_end_keeps_its_last_sentence(whisper: Transcriber) -> None:
    """multilingual.mp3 (faster-whisper's test data): English up to 29.5 s, then another language."""
    items = segments_of(SHARED_SPEECH)
    first = whisper.transcribe_batch(items[:1])[0].text
    assert "substantial portions of the software" in first.lower()
    assert recall(sequential(items[:1])[0], first) >= 0.95


def test_revision_is_the_models_content_and_decoding(tmp_path: Path) -> None:
    packaged = Path(resolve_model_path("tiny.en", ""))
    revision = folder_revision(packaged)
    copy = tmp_path / "tiny-copy"
    copy.mkdir()
    for path in packaged.iterdir():
        if path.is_file():
            (copy / path.name).write_bytes(path.read_bytes())
    assert folder_revision(copy) == revision  # same content, same revision, wherever it lies
    (copy / "vocabulary.txt").write_text("changed")
    assert folder_revision(copy) != revision  # new weights or vocabulary: a new revision
    files = {"model.bin": "a" * 64}
    assert fingerprint(files, FASTER_WHISPER_DECODING) != fingerprint(files, {**FASTER_WHISPER_DECODING,
                                                                             "beam_size": 1})


def test_submit_can_pin_a_model_it_only_knows_from_the_mirror(tmp_path: Path) -> None:
    from runtime.config import load_settings

    model = tmp_path / "small-model"
    model.mkdir()
    (model / "model.bin").write_bytes(b"weights")
    (model / "config.json").write_text("{}")
    store = FileStore(tmp_path / "store")
    store.ensure()
    publish(store, "org/small", model)
    settings = load_settings(env={}, home=tmp_path / "home", model="org/small")
    assert transcriber_revision(settings, store) == folder_revision(model)


def test_a_new_revision_makes_new_segment_ids() -> None:
    import numpy as np

    from runtime.media import Pcm

    pcm = Pcm(np.arange(1600, dtype=np.int16))
    assert segment_id(pcm, TaskOptions(revision="fw-a")) != segment_id(pcm, TaskOptions(revision="fw-b"))
    assert segment_id(pcm, TaskOptions()) == segment_id(pcm, TaskOptions(revision=""))  # unpinned: as before
