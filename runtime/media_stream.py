"""Read a media file by path in bounded memory: hash it, check it, decode it chunk by chunk.

`runtime.media.decode_bytes` holds the whole file and its whole PCM (a 2-hour film: GBs); a submit
reads films, so it never does. It makes three passes instead, each holding a few MiB:

1. **hash** the bytes (the job id is their SHA-256: the same as hashing the whole file at once);
2. **check** the container by demuxing its audio packets without decoding them: no audio stream, not
   media, or **truncated** (the packets end well before the duration the container declares) are
   refused before anything is written or enqueued, as the whole-file path refused them;
3. **decode** to 16 kHz mono int16, in chunks of about ``chunk_seconds``: the same samples, in the
   same order, as `decode_bytes` (one decoder, one resampler, run over the same frames).

What only decoding finds (a corrupt packet halfway through a file) is found in pass 3, after the
segments before it were queued: the submit then records the job as failed (see runtime/submit.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from runtime.errors import MediaError
from runtime.media import (
    _TRUNCATION_RATIO,
    _TRUNCATION_TOLERANCE_S,
    SAMPLE_RATE,
    _declared_seconds,
    _reason,
    open_media_file,
)

_BLOCK = 1 << 20


def hash_file(path: Path, progress: Callable[[int, int], None] = lambda done, total: None) -> tuple[str, int]:
    """(SHA-256 of the file's bytes, its size), reading 1 MiB at a time; refuses an empty file."""
    with open_media_file(path) as handle:
        size = path.stat().st_size
        if size == 0:
            raise MediaError(f"{path}: file is empty")
        digest, done = hashlib.sha256(), 0
        while block := handle.read(_BLOCK):
            digest.update(block)
            done += len(block)
            progress(done, size)
    return digest.hexdigest(), done


def _open_container(path: Path, handle: BinaryIO) -> av.container.InputContainer:
    try:
        return av.open(handle, mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError) as err:
        raise MediaError(f"{path}: not a media file FFmpeg can read ({_reason(err)})") from None


def check_media(path: Path) -> float:
    """The seconds of audio the container declares (0 when it declares none), after demuxing every
    audio packet to make sure they are there; `MediaError` for a file no submit should start on."""
    with open_media_file(path) as handle, _open_container(path, handle) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: has no audio stream")
        stream = container.streams.audio[0]
        declared = _declared_seconds(container, stream)
        end, packets = 0.0, 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None or packet.time_base is None:
                    continue
                packets += 1
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        except (av.error.FFmpegError, ValueError) as err:
            raise MediaError(f"{path}: audio is corrupt or truncated ({_reason(err)})") from None
        start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
        if packets == 0:
            raise MediaError(f"{path}: contains no decodable audio")
        if declared and end - start < declared * _TRUNCATION_RATIO - _TRUNCATION_TOLERANCE_S:
            raise MediaError(f"{path}: truncated — the container declares {declared:.1f} s but its audio "
                             f"ends at {end - start:.1f} s; re-export or re-download the file")
        return declared


def stream_pcm(path: Path, chunk_seconds: float = 10.0) -> Iterator[tuple[np.ndarray, int]]:
    """16 kHz mono int16 chunks of about *chunk_seconds*, each with the bytes of the file read so far."""
    target = int(chunk_seconds * SAMPLE_RATE)
    with open_media_file(path) as handle, _open_container(path, handle) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: has no audio stream")
        stream = container.streams.audio[0]
        declared = _declared_seconds(container, stream)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        pending: list[np.ndarray] = []
        held = total = 0
        try:
            for frame in _frames(container, stream):
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1).astype(np.int16)
                    pending.append(samples)
                    held += len(samples)
                if held >= target:
                    total += held
                    yield np.concatenate(pending), handle.tell()
                    pending, held = [], 0
        except (av.error.FFmpegError, ValueError) as err:
            raise MediaError(f"{path}: audio is corrupt or truncated ({_reason(err)})") from None
        total += held
        if total == 0:
            raise MediaError(f"{path}: contains no decodable audio")
        if declared and total / SAMPLE_RATE < declared * _TRUNCATION_RATIO - _TRUNCATION_TOLERANCE_S:
            raise MediaError(f"{path}: truncated — the container declares {declared:.1f} s but only "
                             f"{total / SAMPLE_RATE:.1f} s decode; re-export or re-download the file")
        if held:
            yield np.concatenate(pending), handle.tell()


def _frames(container: av.container.InputContainer,
            stream: av.audio.AudioStream) -> Iterator[av.AudioFrame | None]:
    """The stream's frames, then None (which flushes the resampler)."""
    yield from container.decode(stream)
    yield None
