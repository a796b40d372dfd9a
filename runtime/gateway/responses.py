"""A finished job in the response formats of OpenAI's ``/v1/audio/transcriptions``, and errors in
OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``), so the official SDKs parse both.

Subtitles come from the kit's own renderers (`runtime.formats`), so `spotkit fetch` and the gateway
write the same SRT and WebVTT for a job.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from runtime.formats import render
from runtime.jobs import SourceCue

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
MEDIA_TYPES = {"json": "application/json", "verbose_json": "application/json", "text": "text/plain; charset=utf-8",
               "srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}


def transcript_text(cues: Sequence[SourceCue]) -> str:
    return " ".join(c.text for c in cues).strip()


# OpenAI's verbose_json names the language in English words ("english"); other codes are given as codes.
_NAMES = {"en": "english", "de": "german", "es": "spanish", "fr": "french", "it": "italian", "ja": "japanese",
          "ko": "korean", "nl": "dutch", "pt": "portuguese", "ru": "russian", "zh": "chinese"}


def language_name(code: str) -> str:
    return _NAMES.get(code, code)


def verbose(cues: Sequence[SourceCue], language: str, duration: float) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": "transcribe", "language": language_name(language), "duration": duration,
        "text": transcript_text(cues),
        "segments": [{"id": n, "seek": 0, "start": c.start, "end": c.end, "text": c.text, "tokens": [],
                      "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 0.0, "no_speech_prob": 0.0}
                     for n, c in enumerate(cues)]}
    words = [{"word": str(w[2]).strip(), "start": w[0], "end": w[1]} for c in cues for w in c.words or []]
    if words:
        body["words"] = words
    return body


def body_for(fmt: str, cues: Sequence[SourceCue], language: str, duration: float) -> tuple[str, str]:
    """(body, media type) of one response format."""
    if fmt == "json":
        return json.dumps({"text": transcript_text(cues)}, ensure_ascii=False), MEDIA_TYPES[fmt]
    if fmt == "verbose_json":
        return json.dumps(verbose(cues, language, duration), ensure_ascii=False), MEDIA_TYPES[fmt]
    if fmt == "text":
        return transcript_text(cues) + "\n", MEDIA_TYPES[fmt]
    if fmt in ("srt", "vtt"):
        return render(cues, fmt), MEDIA_TYPES[fmt]
    raise ValueError(f"unknown response_format {fmt!r}")


def all_results(cues: Sequence[SourceCue], language: str, duration: float) -> dict[str, Any]:
    """Every format at once, for the asynchronous job API (JSON formats as objects, the rest as text)."""
    return {"json": {"text": transcript_text(cues)}, "verbose_json": verbose(cues, language, duration),
            "text": transcript_text(cues), "srt": render(cues, "srt"), "vtt": render(cues, "vtt")}


ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 409: "invalid_request_error", 413: "invalid_request_error",
               429: "rate_limit_error", 500: "server_error", 502: "server_error", 503: "server_error", 504: "timeout"}


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"),
                                 "param": param, "code": code}}).encode()
