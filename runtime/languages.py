"""Language codes that make sense, checked before any work is queued.

Spoken languages are the codes Whisper knows (faster-whisper's tokenizer list); an English-only model
(``*.en``) is only ever asked for English — anything else would silently come back as English.
Translation targets are BCP 47 tags whose primary language is an ISO 639-1 code (``ja``, ``pt-BR``,
``zh-Hant``), or one of Whisper's three-letter codes (``haw``, ``yue``).
"""

from __future__ import annotations

import re

from runtime.errors import ConfigError

# ISO 639-1 (every two-letter language code).
ISO_639_1 = frozenset("""
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz
ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io
is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr
ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si
sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh
yi yo za zh zu""".split())
_TAG = re.compile(r"^(?P<primary>[a-z]{2,3})(-(?P<script>[A-Z][a-z]{3}))?(-(?P<region>[A-Z]{2}|\d{3}))?$")


def whisper_languages() -> frozenset[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


def english_only(model: str) -> bool:
    return model.lower().endswith(".en")


def check_spoken(language: str, model: str, where: str = "--language") -> str:
    """"" (detect) or a code Whisper knows, and English for an English-only model."""
    if not language:
        return language
    if language not in whisper_languages():
        raise ConfigError(f"{where} {language!r} is not a language Whisper knows; use a code like en, de or ja "
                          "(or leave it out to detect)")
    if english_only(model) and language != "en":
        raise ConfigError(f"{where} {language!r}: model {model} is English-only and would transcribe it as "
                          "English; use a multilingual model (e.g. SPOTKIT_MODEL=large-v3) or --language en")
    return language


def check_target(tag: str) -> str:
    """A translation target: ISO 639-1 primary language, optional script and region (pt-BR, zh-Hant)."""
    match = _TAG.match(tag)
    primary = match.group("primary") if match else ""
    if not match or not (primary in ISO_639_1 or primary in whisper_languages()):
        raise ConfigError(f"--translate: {tag!r} is not a language tag like ja, es or pt-BR")
    return tag
