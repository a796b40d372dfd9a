"""Metered OpenAI-compatible APIs (OpenAI, Azure OpenAI, a gateway) as engine providers.

Base URL and key follow the OpenAI SDK's conventions — ``OPENAI_BASE_URL`` (default
``https://api.openai.com/v1``) and ``OPENAI_API_KEY`` — and are read from the environment only; the
key is never logged or put in an error message. Every request has a timeout; 429 and 5xx are retried
with exponential backoff (honouring ``Retry-After``), a bounded number of times; anything else — a
4xx, a malformed body, retries exhausted — raises `EngineError`, and the agent returns the segment
to the queue with that reason, so nothing is lost.
"""

from __future__ import annotations

import io
import json
import os
import time
import urllib.error
import urllib.request
import uuid
import wave
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.engines.base import AudioItem, Transcriber, Translation, Translator
from runtime.errors import ConfigError, EngineError
from runtime.media import SAMPLE_RATE
from runtime.redact import redact
from runtime.work import Cue, TranscriptResult

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRYABLE = {408, 409, 429, 500, 502, 503, 504}


@dataclass
class ApiClient:
    base_url: str
    api_key: str = field(repr=False)
    timeout: float = 60.0
    attempts: int = 4
    backoff_seconds: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    @staticmethod
    def from_env(env: Mapping[str, str] | None = None, **options: Any) -> ApiClient:
        env = os.environ if env is None else env
        key = env.get("OPENAI_API_KEY", "")
        if not key:
            raise ConfigError("OPENAI_API_KEY is not set; the metered-API provider needs it "
                              "(on nodes it comes from Key Vault, never from custom data)")
        return ApiClient(env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL, key, **options)

    def post(self, path: str, body: bytes, content_type: str) -> dict[str, Any]:
        url = self.base_url.rstrip("/") + path
        last = ""
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(url, data=body, method="POST", headers={
                "Authorization": f"Bearer {self.api_key}", "Content-Type": content_type})
            delay = self.backoff_seconds * 2 ** (attempt - 1)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                    payload = reply.read()
                try:
                    parsed = json.loads(payload)
                except ValueError:
                    raise EngineError(f"{path}: malformed reply (not JSON): "
                                      f"{redact(repr(payload[:80]), self.api_key)}") from None
                if not isinstance(parsed, dict):
                    raise EngineError(f"{path}: malformed reply (not a JSON object)")
                return parsed
            except urllib.error.HTTPError as err:
                detail = redact(err.read()[:200].decode(errors="replace"), self.api_key)
                if err.code not in RETRYABLE:
                    raise EngineError(f"{path}: HTTP {err.code}: {detail}") from None
                last = f"HTTP {err.code}"
                retry_after = err.headers.get("Retry-After") if err.headers else None
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    delay = max(delay, float(retry_after))
            except (urllib.error.URLError, TimeoutError, OSError) as err:
                last = f"unreachable or timed out ({getattr(err, 'reason', err)})"
            if attempt < self.attempts:
                self.sleep(min(delay, 60.0))
        raise EngineError(f"{path}: gave up after {self.attempts} attempts ({last})")


def _wav(samples: bytes) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples)
    return buf.getvalue()


def _multipart(fields: dict[str, str], file_name: str, file_bytes: bytes) -> tuple[bytes, str]:
    boundary = f"spotkit-{uuid.uuid4().hex}"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append((f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
                  "Content-Type: audio/wav\r\n\r\n").encode() + file_bytes + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class OpenAITranscriber(Transcriber):
    """``POST /audio/transcriptions`` per segment (the API takes one file a request)."""

    engine = "openai"

    def __init__(self, client: ApiClient, model: str = "whisper-1", served_as: str = "") -> None:
        self.client, self.api_model = client, model
        self.model = served_as or model  # the name segments ask for (their ids hash it)
        self.revision = f"api-{self.model}"  # a metered API cannot be pinned by content

    def transcribe_batch(self, items: list[AudioItem]) -> list[TranscriptResult]:
        results = []
        for item in items:
            fields = {"model": self.api_model, "response_format": "verbose_json"}
            if item.options.language:
                fields["language"] = item.options.language
            body, content_type = _multipart(fields, f"{item.segment}.wav", _wav(item.pcm.samples.tobytes()))
            reply = self.client.post("/audio/transcriptions", body, content_type)
            segments = reply.get("segments")
            if isinstance(segments, list) and segments:
                try:
                    cues = [Cue(round(float(s["start"]), 3), round(float(s["end"]), 3), str(s["text"]).strip())
                            for s in segments]
                except (KeyError, TypeError, ValueError):
                    raise EngineError("/audio/transcriptions: malformed segments in the reply") from None
            elif isinstance(reply.get("text"), str):
                cues = [Cue(0.0, round(item.pcm.seconds, 3), reply["text"].strip())]
            else:
                raise EngineError("/audio/transcriptions: reply has neither segments nor text")
            results.append(TranscriptResult(item.segment, self.model, self.engine,
                                            str(reply.get("language") or item.options.language), cues))
        return results


class OpenAITranslator(Translator):
    """Chat completions: one cue's text, the text before it as context, one target language. vLLM
    serves the same API, so the ``vllm`` provider is this class pointed at the supervised server."""

    def __init__(self, client: ApiClient, model: str, engine: str = "openai") -> None:
        self.client, self.model, self.engine = client, model, engine

    def translate(self, text: str, target_language: str, context: str = "") -> Translation:
        messages = [{"role": "system", "content": (
            f"Translate the user's transcript segment into {target_language}. Reply with the translation "
            "only. The previous segment is given for context; do not translate it.")}]
        if context:
            messages.append({"role": "user", "content": f"(context) {context}"})
        messages.append({"role": "user", "content": text})
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0}).encode()
        reply = self.client.post("/chat/completions", body, "application/json")
        try:
            content = reply["choices"][0]["message"]["content"]
            usage = reply.get("usage") or {}
            return Translation(str(content).strip(), int(usage.get("prompt_tokens", 0)),
                               int(usage.get("completion_tokens", 0)))
        except (KeyError, IndexError, TypeError, ValueError):
            raise EngineError("/chat/completions: malformed reply (no choices[0].message.content)") from None
