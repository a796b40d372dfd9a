"""Decode any media file FFmpeg reads (wav, flac, mp3, m4a, mp4, …) into 16 kHz mono PCM.

Uses PyAV, the decoder faster-whisper itself uses, but checks what faster-whisper does not: an empty
file, a file with no audio stream, and a truncated file (decodable audio much shorter than the
duration the container declares) are refused with a one-line reason instead of yielding a partial
transcript.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from runtime.errors import MediaError

SAMPLE_RATE = 16_000
# A decoded stream this much shorter than the container's declared duration is a truncated file.
_TRUNCATION_TOLERANCE_S = 0.5
_TRUNCATION_RATIO = 0.98


@dataclass(frozen=True)
class Pcm:
    """Mono 16 kHz signed 16-bit samples: the canonical form that segment ids hash."""

    samples: np.ndarray  # int16, shape (n,)

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    def as_float(self) -> np.ndarray:
        return self.samples.astype(np.float32) / 32768.0


def open_media_file(path: Path) -> BinaryIO:
    """The file, open for reading, or a one-line reason why it cannot be read."""
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MediaError(f"{path}: is a directory, not a media file") from None
    except OSError as err:
        raise MediaError(f"{path}: cannot read ({err.strerror})") from None


def read_media(path: Path) -> bytes:
    """The file's bytes, or a one-line reason why there are none to read."""
    with open_media_file(path) as handle:
        try:
            return handle.read()
        except OSError as err:
            raise MediaError(f"{path}: cannot read ({err.strerror})") from None


def decode_file(path: Path) -> Pcm:
    return decode_bytes(read_media(path), name=str(path))


def decode_bytes(data: bytes, name: str = "<input>") -> Pcm:
    if not data:
        raise MediaError(f"{name}: file is empty")
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError) as err:
        raise MediaError(f"{name}: not a media file FFmpeg can read ({_reason(err)})") from None
    with container:
        if not container.streams.audio:
            raise MediaError(f"{name}: has no audio stream")
        stream = container.streams.audio[0]
        declared = _declared_seconds(container, stream)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except (av.error.FFmpegError, ValueError) as err:
            raise MediaError(f"{name}: audio is corrupt or truncated ({_reason(err)})") from None
    samples = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, dtype=np.int16)
    pcm = Pcm(samples)
    if pcm.seconds == 0:
        raise MediaError(f"{name}: contains no decodable audio")
    if declared and pcm.seconds < declared * _TRUNCATION_RATIO - _TRUNCATION_TOLERANCE_S:
        raise MediaError(
            f"{name}: truncated — the container declares {declared:.1f} s but only "
            f"{pcm.seconds:.1f} s decode; re-export or re-download the file"
        )
    return pcm


def _declared_seconds(container: av.container.InputContainer, stream: av.audio.AudioStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return 0.0


def _reason(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.split(":")[0].strip() or type(err).__name__
