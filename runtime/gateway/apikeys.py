"""Gateway API keys: issued by ``spotkit keys create``, kept hashed in the store, checked per request.

A key reads ``sk-spotkit-<id>-<secret>``: the id is public (it names the key in usage records, logs
and ``spotkit keys list``), the secret is 32 random bytes that only the key's holder sees, once, when
it is created. The store keeps its SHA-256; a fast hash is enough because the secret is random and
long (nothing to brute-force from a dictionary), and it lets every gateway instance check a key
with one store read and no shared state — so a revocation holds on every instance at its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import time
from dataclasses import replace

from runtime.errors import NotFound, SpotkitError
from runtime.records import GATEWAY_KEYS, ApiKey, BadRecord, api_key_key, dump, load, read_all
from runtime.store.base import ObjectStore

PREFIX = "sk-spotkit-"
_TEXT = re.compile(r"^sk-spotkit-(?P<id>[0-9a-f]{12})-(?P<secret>[A-Za-z0-9_-]{20,100})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


MAX_RETENTION_DAYS = 3650.0


def check_retention(days: float) -> float:
    """A media retention in days: 0 keeps media until `jobs delete`; NaN, negative or past ten years is
    refused (a typo would otherwise delete media at once, or never)."""
    if not (math.isfinite(days) and 0 <= days <= MAX_RETENTION_DAYS):
        raise SpotkitError(f"--media-retention-days {days:g}: use 0 (keep until `spotkit jobs delete`) or a "
                           f"number of days up to {MAX_RETENTION_DAYS:g}, e.g. 30")
    return float(days)


def create_key(store: ObjectStore, name: str, rate_per_minute: int = 60, max_upload_mb: float = 25.0,
               now: float | None = None, media_retention_days: float = 0.0) -> tuple[ApiKey, str]:
    """A new key for *name* (a team or an application): its record, and its text, shown only now."""
    if not _NAME.match(name):
        raise SpotkitError(f"key name {name!r}: use 1-63 letters, digits, '.', '_' or '-' (e.g. team-search)")
    if rate_per_minute < 1:
        raise SpotkitError(f"--rate-per-minute {rate_per_minute}: must be at least 1")
    check_retention(media_retention_days)
    if not 0 < max_upload_mb <= 4096:
        raise SpotkitError(f"--max-upload-mb {max_upload_mb:g}: must be more than 0 and at most 4096")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    record = ApiKey(key_id, name, _digest(secret), time.time() if now is None else now,
                    rate_per_minute, float(max_upload_mb), media_retention_days=float(media_retention_days))
    if not store.put_if_absent(api_key_key(key_id), dump(record)):
        raise SpotkitError("a key with that id exists already (a one in 2^48 draw); run the command again")
    return record, f"{PREFIX}{key_id}-{secret}"


def list_keys(store: ObjectStore) -> list[ApiKey]:
    return sorted(read_all(store, ApiKey, GATEWAY_KEYS), key=lambda k: k.created_at)


def get_key(store: ObjectStore, key_id: str) -> ApiKey:
    if not re.fullmatch(r"[0-9a-f]{12}", key_id):
        raise SpotkitError(f"{key_id!r} is not a key id (12 hex digits, as `spotkit keys list` shows)")
    try:
        return load(ApiKey, store.get(api_key_key(key_id)), api_key_key(key_id))
    except NotFound:
        raise SpotkitError(f"no key {key_id} in {store.url}; see `spotkit keys list`") from None


def revoke_key(store: ObjectStore, key_id: str, now: float | None = None) -> ApiKey:
    """Revoke a key (idempotent: revoking it again keeps the first revocation's time)."""
    record = get_key(store, key_id)
    if not record.revoked_at:
        record = replace(record, revoked_at=time.time() if now is None else now)
        store.put(api_key_key(key_id), dump(record))
    return record


def set_retention(store: ObjectStore, key_id: str, media_retention_days: float) -> ApiKey:
    """Change a key's media retention; it applies to the jobs the key already sent, from their submission."""
    record = replace(get_key(store, key_id), media_retention_days=check_retention(media_retention_days))
    store.put(api_key_key(key_id), dump(record))
    return record


class KeyRefused(Exception):
    """Why a request's key is not accepted: the message is safe to send back (it never echoes the key)."""


def authenticate(store: ObjectStore, authorization: str | None) -> ApiKey:
    """The valid key a request's ``Authorization: Bearer …`` header carries, or `KeyRefused`."""
    scheme, _, text = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not text.strip():
        raise KeyRefused("missing API key: send it as 'Authorization: Bearer sk-spotkit-…' "
                         "(the OpenAI SDKs do, from api_key or OPENAI_API_KEY); `spotkit keys create` issues one")
    match = _TEXT.match(text.strip())
    if not match:
        raise KeyRefused("invalid API key: not a spotkit key (sk-spotkit-…)")
    try:
        record = load(ApiKey, store.get(api_key_key(match["id"])), api_key_key(match["id"]))
    except (NotFound, BadRecord):
        raise KeyRefused(f"invalid API key {match['id']}: unknown to this gateway's store") from None
    if not hmac.compare_digest(record.sha256, _digest(match["secret"])):
        raise KeyRefused(f"invalid API key {match['id']}: the secret does not match")
    if record.revoked_at:
        raise KeyRefused(f"API key {match['id']} ({record.name}) was revoked; ask for a new one "
                         "(`spotkit keys create`)")
    return record
