"""Metered OpenAI-compatible APIs (OpenAI, Azure OpenAI, a gateway, the node's own vLLM) as engine
providers, on the official ``openai`` SDK — the client our users' applications already use.

Two flavours, chosen by ``metered_api`` (``SPOTKIT_METERED_API``), with the SDK's own variables:

* ``openai`` — ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (default ``https://api.openai.com/v1``).
* ``azure-openai`` — ``AZURE_OPENAI_ENDPOINT`` and ``OPENAI_API_VERSION``; Microsoft Entra ID through
  the machine's managed identity (a bearer token from ``azure-identity``, refreshed before it
  expires; no key anywhere), or ``AZURE_OPENAI_API_KEY`` where a key is used instead. Models are
  *deployments*: ``SPOTKIT_MODEL`` and ``SPOTKIT_TRANSLATOR_MODEL`` name them.

The SDK owns timeouts, multipart uploads and retries (bounded, honouring ``Retry-After``); its retry
count comes from the kit's `RetryPolicy`, so nothing wraps it in a second layer. Its errors are
mapped to `EngineError` kinds here, at the boundary, with keys and tokens redacted; 401/403 are
never retried. Keys are read from the environment only and never logged.
"""

from __future__ import annotations

import io
import math
import os
import urllib.parse
import wave
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import openai
from openai.types.audio import TranscriptionVerbose
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from runtime.engines.base import AudioItem, Transcriber, Translation, Translator
from runtime.errors import ConfigError, EngineError
from runtime.http import TRANSIENT_STATUS
from runtime.media import SAMPLE_RATE
from runtime.redact import redact
from runtime.retry import Backoff, RetryPolicy
from runtime.work import Cue, TranscriptResult

METERED_APIS = ("openai", "azure-openai")
AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"
DEFAULT_AZURE_API_VERSION = "2024-10-21"  # GA; serves audio transcriptions and chat completions
# Four tries in all; the SDK waits 0.5 s doubling to 8 s with jitter, or what Retry-After says (≤ 60 s).
API_RETRY = RetryPolicy(4, Backoff(base_seconds=0.5, cap_seconds=8.0))
API_TIMEOUT_SECONDS = 60.0
_LOOPBACK = ("127.0.0.1", "localhost", "::1")  # stand-ins and gateways on the same machine


def open_api(api: str, env: Mapping[str, str] | None = None, *, timeout: float = API_TIMEOUT_SECONDS,
             retry: RetryPolicy = API_RETRY, credential: Any = None,
             http_client: Any = None) -> openai.OpenAI:
    """The SDK client for one flavour, or `ConfigError` naming what is missing."""
    env = os.environ if env is None else env
    common: dict[str, Any] = {"timeout": timeout, "max_retries": retry.openai_max_retries(),
                              "http_client": http_client}
    if api == "openai":
        key = env.get("OPENAI_API_KEY", "")
        if not key:
            raise ConfigError("OPENAI_API_KEY is not set; the openai metered API needs it "
                              "(on nodes it comes from Key Vault, never from custom data)")
        return openai.OpenAI(api_key=key, base_url=env.get("OPENAI_BASE_URL") or None, **common)
    if api == "azure-openai":
        endpoint = env.get("AZURE_OPENAI_ENDPOINT", "")
        parts = urllib.parse.urlsplit(endpoint)
        if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)) \
                or not parts.hostname:
            raise ConfigError(f"AZURE_OPENAI_ENDPOINT = {endpoint!r}: set it to the resource's https endpoint, "
                              "e.g. https://my-resource.openai.azure.com (plain http only on loopback)")
        version = env.get("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION
        key = env.get("AZURE_OPENAI_API_KEY", "")
        if key:
            return openai.AzureOpenAI(azure_endpoint=endpoint, api_version=version, api_key=key, **common)
        return openai.AzureOpenAI(azure_endpoint=endpoint, api_version=version,
                                  azure_ad_token_provider=entra_token_provider(credential, env), **common)
    raise ConfigError(f"metered_api = {api!r}: use one of {', '.join(METERED_APIS)} (SPOTKIT_METERED_API)")


def entra_token_provider(credential: Any = None, env: Mapping[str, str] | None = None) -> Callable[[], str]:
    """Bearer tokens for Azure OpenAI from the machine's credential, cached and refreshed by
    azure-identity before they expire (the SDK asks for one per request)."""
    from azure.identity import get_bearer_token_provider

    if credential is None:
        from runtime.azure_env import credential as machine_credential

        credential = machine_credential(env)
    provider: Callable[[], str] = get_bearer_token_provider(credential, AZURE_SCOPE)
    return provider


def engine_error(what: str, err: openai.OpenAIError) -> EngineError:
    """The SDK's error as an `EngineError` of a kind: ``auth`` (401/403: fix the credential),
    ``rate_limited`` (429 after the SDK's retries), ``transient`` (5xx, 408/409, timeout,
    unreachable), ``bad_request`` (another 4xx: the request itself) or ``malformed`` (an answer that
    is not what the API documents)."""
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        kind = ("auth" if status in (401, 403) else "rate_limited" if status == 429
                else "transient" if status in TRANSIENT_STATUS else "bad_request")
        first = (str(err.message).strip().splitlines() or [""])[0][:300]
        return EngineError(redact(f"{what}: HTTP {status} ({kind}): {first}"), kind=kind,
                           transient=kind in ("rate_limited", "transient"))
    if isinstance(err, openai.APITimeoutError):
        return EngineError(f"{what}: timed out (the SDK's retries are used up)", kind="transient", transient=True)
    if isinstance(err, openai.APIConnectionError):
        return EngineError(redact(f"{what}: unreachable ({err.__cause__ or err})"), kind="transient",
                           transient=True)
    return EngineError(redact(f"{what}: malformed reply ({type(err).__name__}: {err})"), kind="malformed")


def _malformed(what: str, detail: str) -> NoReturn:
    raise EngineError(f"{what}: malformed reply ({detail})", kind="malformed")


def _cue(what: str, segment: Any) -> Cue:
    """One reply segment as a cue. The SDK builds its models without validating them (a gateway may
    leave fields out), so the three fields spotkit uses are checked here."""
    start, end, text = (getattr(segment, name, None) for name in ("start", "end", "text"))
    if not (isinstance(start, int | float) and isinstance(end, int | float) and isinstance(text, str)
            and math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
        _malformed(what, f"a segment without a valid start, end and text: {redact(repr(segment)[:120])}")
    return Cue(round(float(start), 3), round(float(end), 3), text.strip())


def _wav(samples: bytes) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples)
    return buf.getvalue()


class OpenAITranscriber(Transcriber):
    """``audio.transcriptions.create`` per segment (the API takes one file a request)."""

    engine = "openai"
    metered = True

    def __init__(self, client: openai.OpenAI, model: str = "whisper-1", served_as: str = "") -> None:
        self.client, self.api_model = client, model
        self.model = served_as or model  # the name segments ask for (their ids hash it)
        self.revision = f"api-{self.model}"  # a metered API cannot be pinned by content

    def transcribe_batch(self, items: list[AudioItem]) -> list[TranscriptResult]:
        return [self._one(item) for item in items]

    def _one(self, item: AudioItem) -> TranscriptResult:
        what = "/audio/transcriptions"
        options: dict[str, Any] = {"language": item.options.language} if item.options.language else {}
        try:
            reply = self.client.audio.transcriptions.create(
                model=self.api_model, file=(f"{item.segment}.wav", _wav(item.pcm.samples.tobytes()), "audio/wav"),
                response_format="verbose_json", **options)
        except openai.OpenAIError as err:
            raise engine_error(what, err) from None
        if not isinstance(reply, TranscriptionVerbose):
            _malformed(what, f"not a verbose transcription: {redact(repr(reply)[:80])}")
        cues = [_cue(what, segment) for segment in reply.segments or []]
        text = reply.text if isinstance(reply.text, str) else ""
        if not cues and text.strip():
            cues = [Cue(0.0, round(item.pcm.seconds, 3), text.strip())]
        usage = reply.usage
        tokens = int(getattr(usage, "output_tokens", 0) or 0)  # token-billed models; whisper-1 bills seconds
        return TranscriptResult(item.segment, self.model, self.engine,
                                str(reply.language or item.options.language), cues, tokens=tokens)


class OpenAITranslator(Translator):
    """Chat completions: one cue's text, the text before it as context, one target language. vLLM
    serves the same API, so the ``vllm`` provider is this class pointed at the supervised server."""

    def __init__(self, client: openai.OpenAI, model: str, engine: str = "openai") -> None:
        self.client, self.model, self.engine = client, model, engine

    def translate(self, text: str, target_language: str, context: str = "") -> Translation:
        what = "/chat/completions"
        messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": (
            f"Translate the user's transcript segment into {target_language}. Reply with the translation "
            "only. The previous segment is given for context; do not translate it.")}]
        if context:
            messages.append({"role": "user", "content": f"(context) {context}"})
        messages.append({"role": "user", "content": text})
        try:
            reply = self.client.chat.completions.create(model=self.model, messages=messages, temperature=0)
        except openai.OpenAIError as err:
            raise engine_error(what, err) from None
        if not isinstance(reply, ChatCompletion) or not isinstance(reply.choices, list) or not reply.choices:
            _malformed(what, "no choices")
        message = getattr(reply.choices[0], "message", None)
        content = getattr(message, "content", None)
        if not isinstance(content, str):
            _malformed(what, "no choices[0].message.content")
        usage = reply.usage
        prompt, completion = (getattr(usage, name, 0) for name in ("prompt_tokens", "completion_tokens"))
        return Translation(content.strip(), prompt if isinstance(prompt, int) else 0,
                           completion if isinstance(completion, int) else 0)
