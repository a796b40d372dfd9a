"""Keep credentials out of every error text before it is logged or stored.

A gateway that echoes the request (its ``Authorization`` header, an ``api_key`` query parameter) in
an error body would otherwise put the key into the agent's log, the queue's last-error field, the
poison queue, poison records and usage files — places with far wider read access than Key Vault.
"""

from __future__ import annotations

import re

_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 [redacted]"),
    (re.compile(r"(?i)\b(authorization|api[-_]?key|x-api-key|access[-_]?token|sig|secret|password)"
                r"(\"?\s*[:=]\s*\"?)[^\s\"',;&}]{4,}"), r"\1\2[redacted]"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-[redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), "[redacted-jwt]"),
    (re.compile(r"(?i)(AccountKey=)[A-Za-z0-9+/=]{10,}"), r"\1[redacted]"),
)


def redact(text: str, *secrets: str) -> str:
    """*text* with bearer tokens, API keys, JWTs, storage account keys and the given *secrets* masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
