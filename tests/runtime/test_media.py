"""Decoding real containers, and refusing bad input with a one-line reason."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from runtime.audio_codec import decode_flac, encode_audio, encode_flac
from runtime.errors import MediaError
from runtime.media import SAMPLE_RATE, Pcm, decode_bytes, decode_file
from tests.conftest import DATA, DEMO_SAMPLE


def write_wav(path: Path, pcm: Pcm, rate: int = SAMPLE_RATE) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.samples.tobytes())


def write_mp4(path: Path, pcm: Pcm) -> None:
    """An AAC track in an MP4 container, made with PyAV (no ffmpeg binary needed)."""
    path.write_bytes(encode_audio(pcm, "mp4", "aac", "flt", 1024))


def test_flac_sample_decodes_to_16k_mono() -> None:
    pcm = decode_file(DEMO_SAMPLE)
    assert pcm.samples.dtype == np.int16
    assert 60 < pcm.seconds < 61
    assert np.abs(pcm.samples).max() > 1000  # real signal, not silence


@pytest.mark.parametrize("name", ["speech.mp3", "speech.m4a"])
def test_compressed_containers_decode(name: str) -> None:
    pcm = decode_file(DATA / name)
    assert 11.5 < pcm.seconds < 12.5


def test_wav_and_mp4_made_here_decode(tmp_path: Path) -> None:
    source = decode_file(DATA / "speech.mp3")
    write_wav(tmp_path / "a.wav", source)
    write_mp4(tmp_path / "a.mp4", source)
    assert np.array_equal(decode_file(tmp_path / "a.wav").samples, source.samples)
    assert abs(decode_file(tmp_path / "a.mp4").seconds - source.seconds) < 0.2


def test_resamples_other_rates(tmp_path: Path) -> None:
    tone = (np.sin(np.arange(44_100) / 44_100 * 2 * np.pi * 440) * 8000).astype(np.int16)
    write_wav(tmp_path / "tone.wav", Pcm(tone), rate=44_100)
    assert abs(decode_file(tmp_path / "tone.wav").seconds - 1.0) < 0.01


def test_flac_round_trip_is_bit_exact() -> None:
    pcm = decode_file(DATA / "speech.mp3")
    data = encode_flac(pcm)
    assert len(data) < len(pcm.samples) * 2  # compressed
    assert np.array_equal(decode_flac(data).samples, pcm.samples)
    assert encode_flac(pcm) == data  # deterministic bytes


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        decode_file(tmp_path / "nope.mp3")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="is a directory"):
        decode_file(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp3").write_bytes(b"")
    with pytest.raises(MediaError, match="file is empty"):
        decode_file(tmp_path / "empty.mp3")


def test_not_media(tmp_path: Path) -> None:
    (tmp_path / "notes.mp3").write_text("meeting notes, definitely not audio\n" * 50)
    with pytest.raises(MediaError, match="not a media file"):
        decode_file(tmp_path / "notes.mp3")


def test_truncated_mp3() -> None:
    data = (DATA / "speech.mp3").read_bytes()
    with pytest.raises(MediaError, match="truncated"):
        decode_bytes(data[: len(data) // 3], name="cut.mp3")


def test_truncated_m4a() -> None:
    data = (DATA / "speech.m4a").read_bytes()
    with pytest.raises(MediaError):
        decode_bytes(data[: len(data) // 2], name="cut.m4a")


def test_video_without_audio(tmp_path: Path) -> None:
    with av.open(str(tmp_path / "silent.mp4"), mode="w") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), dtype=np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(MediaError, match="no audio stream"):
        decode_file(tmp_path / "silent.mp4")


def test_error_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_bytes(io.BytesIO(b"RIFF\x00\x00garbage").getvalue())
    with pytest.raises(MediaError) as err:
        decode_file(tmp_path / "x.wav")
    assert "\n" not in str(err.value)
