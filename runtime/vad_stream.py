"""Silero VAD over a stream of PCM, giving exactly the spans faster-whisper finds in the whole file.

Why not run `find_speech` on chunks with an overlap: faster-whisper's VAD is stateful. The model
carries its LSTM state (``h``, ``c``) and a 64-sample context from each 512-sample window to the next,
runs its windows in batches of 10 000, and the speech state machine (when a span starts, when
500 ms of silence end it, where a 30 s span is split, how far each span is padded into its
neighbours' silence) reads the probabilities in order. Chunks cut anywhere else would give other
probabilities and other span boundaries, hence other segment ids, and the cache would stop
answering resubmits. So the stream does what `faster_whisper.vad.get_speech_timestamps` does, in
the same order, carrying all that state across chunks: the "overlap" is the state itself, and a
span crossing a chunk boundary is found whole because nothing is decided at the boundary.
`tests/runtime/test_streaming_submit.py` holds the two equal on real speech.

Memory: the unprocessed samples (at most one batch, 32 s) plus the audio from the earliest sample
a span not yet handed out may still need (a span in progress is at most ``max_seconds`` long).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.media import SAMPLE_RATE

WINDOW = 512  # samples per VAD window (faster-whisper's, at 16 kHz)
CONTEXT = 64  # samples of the previous window each window sees
# Windows per model call: 32 s of audio. faster-whisper runs 10 000 (320 s) per call, which costs
# about 150 MB of activations; the model's output does not depend on how its windows are split into
# calls (the state is carried), bit for bit, as the tests hold against faster-whisper's own VAD.
BATCH = 1_000

Span = tuple[int, int]


@dataclass
class _Speech:
    start: int | float
    end: int | float = 0


class SpeechStream:
    """Feed int16 PCM in any chunks; get speech spans (source samples) as soon as they are final.

    The options are `runtime.segmenter.find_speech`'s: spans at most *max_seconds*, 500 ms of silence
    ends one. Each span comes with its samples, taken before they are released.
    """

    def __init__(self, max_seconds: float) -> None:
        from faster_whisper.vad import VadOptions, get_vad_model

        options = VadOptions(max_speech_duration_s=max_seconds, min_silence_duration_ms=500)
        self._session = get_vad_model().session
        self.threshold = options.threshold
        self.neg_threshold = max(options.threshold - 0.15, 0.01) if options.neg_threshold is None \
            else options.neg_threshold
        self.min_speech = SAMPLE_RATE * options.min_speech_duration_ms / 1000
        self.pad = SAMPLE_RATE * options.speech_pad_ms / 1000
        self.max_speech = SAMPLE_RATE * options.max_speech_duration_s - WINDOW - 2 * self.pad
        self.min_silence = SAMPLE_RATE * options.min_silence_duration_ms / 1000
        self.min_silence_at_max = SAMPLE_RATE * 98 / 1000
        # Model state carried from batch to batch.
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        # Samples from `_base` on, as chunks; `_next` is the first not yet run through the model.
        self._chunks: list[np.ndarray] = []
        self._base = 0
        self._next = 0
        self.total = 0  # samples fed
        # The state machine of get_speech_timestamps, carried across batches.
        self._window = 0
        self._triggered = False
        self._current: _Speech | None = None
        self._temp_end = self._prev_end = self._next_start = 0
        self._found: list[_Speech] = []  # closed, not yet padded against the next one
        self._first = True

    # -- input -----------------------------------------------------------------------------------

    def feed(self, samples: np.ndarray) -> list[tuple[Span, np.ndarray]]:
        """Add samples; the spans that became final (padded, never to change again), with their audio."""
        if len(samples):
            self._chunks.append(np.asarray(samples, dtype=np.int16))
            self.total += len(samples)
        spans: list[tuple[Span, np.ndarray]] = []
        # Strictly more than a batch: the batch that holds the end of the file (and its padding
        # window) is run by `finish`.
        while self.total - self._next > BATCH * WINDOW:
            self._run(self._take_float(self._next, self._next + BATCH * WINDOW))
            spans += self._emit(final=False)
        self._trim()
        return spans

    def finish(self) -> list[tuple[Span, np.ndarray]]:
        """The end of the stream: the remaining spans, with their audio."""
        tail = self._take_float(self._next, self.total)
        tail = np.pad(tail, (0, WINDOW - tail.shape[0] % WINDOW))  # as faster-whisper pads the file
        # SileroVADModel.__call__ zeroes the last window's context through a view of the audio, so the
        # file's last 64 samples reach the model as zeros: the same here, or the last window differs.
        tail[-CONTEXT:] = 0
        for start in range(0, len(tail), BATCH * WINDOW):
            self._run(tail[start:start + BATCH * WINDOW])
        if self._current is not None and self.total - self._current.start > self.min_speech:
            self._current.end = self.total
            self._found.append(self._current)
            self._current = None
        return self._emit(final=True)

    # -- the model -------------------------------------------------------------------------------

    def _run(self, audio: np.ndarray) -> None:
        """One model call on whole windows, as SileroVADModel.__call__ makes it, with the state carried."""
        windows = audio.reshape(-1, WINDOW)
        contexts = np.empty((len(windows), CONTEXT), dtype=np.float32)
        contexts[0] = self._context
        contexts[1:] = windows[:-1, -CONTEXT:]
        self._context = windows[-1, -CONTEXT:].copy()
        batch = np.concatenate([contexts, windows], 1)
        probs, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._next += len(windows) * WINDOW
        for prob in np.asarray(probs).reshape(-1):
            self._step(float(prob))

    def _step(self, prob: float) -> None:
        """One window of get_speech_timestamps' loop (faster-whisper 1.2), unchanged."""
        here = self._window * WINDOW
        self._window += 1
        if prob >= self.threshold and self._temp_end:
            self._temp_end = 0
            if self._next_start < self._prev_end:
                self._next_start = here
        if prob >= self.threshold and not self._triggered:
            self._triggered = True
            self._current = _Speech(here)
            return
        current = self._current
        if self._triggered and current is not None and here - current.start > self.max_speech:
            if self._prev_end:
                current.end = self._prev_end
                self._found.append(current)
                self._current = None
                if self._next_start < self._prev_end:
                    self._triggered = False
                else:
                    self._current = _Speech(self._next_start)
                self._prev_end = self._next_start = self._temp_end = 0
            else:
                current.end = here
                self._found.append(current)
                self._current = None
                self._prev_end = self._next_start = self._temp_end = 0
                self._triggered = False
                return
        if prob < self.neg_threshold and self._triggered:
            if not self._temp_end:
                self._temp_end = here
            if here - self._temp_end > self.min_silence_at_max:
                self._prev_end = self._temp_end
            if here - self._temp_end < self.min_silence:
                return
            current = self._current
            if current is not None:  # None only where faster-whisper would fail on an empty dict
                current.end = self._temp_end
                if current.end - current.start > self.min_speech:
                    self._found.append(current)
            self._current = None
            self._prev_end = self._next_start = self._temp_end = 0
            self._triggered = False

    # -- output ----------------------------------------------------------------------------------

    def _emit(self, final: bool) -> list[tuple[Span, np.ndarray]]:
        """Pad each closed span against the next (get_speech_timestamps' last loop): a span is final
        once the next one exists, or at the end of the stream."""
        out: list[tuple[Span, np.ndarray]] = []
        while len(self._found) > 1 or (final and self._found):
            speech = self._found.pop(0)
            if self._first:
                speech.start = int(max(0, speech.start - self.pad))
                self._first = False
            if self._found:
                following = self._found[0]
                silence = following.start - speech.end
                if silence < 2 * self.pad:
                    speech.end += int(silence // 2)
                    following.start = int(max(0, following.start - silence // 2))
                else:
                    speech.end = int(min(self.total, speech.end + self.pad))
                    following.start = int(max(0, following.start - self.pad))
            else:
                speech.end = int(min(self.total, speech.end + self.pad))
            start, end = int(speech.start), int(speech.end)
            out.append(((start, end), self._take(start, end)))
        return out

    def _needed_from(self) -> int:
        """The first sample a span not yet handed out may still include."""
        if self._found:
            first = self._found[0].start
        elif self._current is not None:
            first = self._current.start
        else:
            first = self._window * WINDOW
        return max(0, int(first - self.pad) - WINDOW)

    def _trim(self) -> None:
        keep = min(self._needed_from(), self._next)
        while self._chunks and self._base + len(self._chunks[0]) <= keep:
            self._base += len(self._chunks.pop(0))

    def _take(self, start: int, end: int) -> np.ndarray:
        parts, at = [], self._base
        for chunk in self._chunks:
            lo, hi = max(start, at), min(end, at + len(chunk))
            if lo < hi:
                parts.append(chunk[lo - at:hi - at])
            at += len(chunk)
            if at >= end:
                break
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    def _take_float(self, start: int, end: int) -> np.ndarray:
        return self._take(start, end).astype(np.float32) / 32768.0
