"""Lossless FLAC for segment audio in the store: about half the size of raw PCM, and bit-exact, so a
node that downloads a segment hashes and transcribes exactly what the submitter hashed."""

from __future__ import annotations

import io

import av
import numpy as np

from runtime.errors import MediaError
from runtime.media import SAMPLE_RATE, Pcm, decode_bytes


def encode_flac(pcm: Pcm) -> bytes:
    # Fixed 4096-sample frames keep the encoding deterministic for a given PyAV build.
    return encode_audio(pcm, "flac", "flac", "s16", 4096)


def encode_audio(pcm: Pcm, container: str, codec: str, sample_format: str, frame_size: int) -> bytes:
    """Encode mono 16 kHz PCM with any FFmpeg codec (``s16`` or ``flt`` input frames)."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=SAMPLE_RATE, layout="mono")
        if not isinstance(stream, av.AudioStream):
            raise MediaError(f"{codec} is not an audio codec")
        samples = pcm.samples if sample_format == "s16" else pcm.as_float()
        for start in range(0, len(samples), frame_size):
            chunk = np.ascontiguousarray(samples[start : start + frame_size]).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format=sample_format, layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def decode_flac(data: bytes, name: str = "segment") -> Pcm:
    pcm = decode_bytes(data, name=name)
    if pcm.seconds == 0:
        raise MediaError(f"{name}: empty segment audio")
    return pcm
