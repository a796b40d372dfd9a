"""Backend URLs (``sqlite:///…``, ``azure-queue://ACCOUNT/QUEUE``, ``sqs://REGION/QUEUE``, ``file:///…``,
``azure-blob://ACCOUNT/CONTAINER``, ``s3://BUCKET[/PREFIX]``): parsing shared by the queue and store
factories. A queue URL may end in ``?shards=N`` (`runtime.queue.sharded`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from runtime.errors import ConfigError

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
QUEUE_SCHEMES = ("sqlite", "azure-queue", "sqs")
STORE_SCHEMES = ("file", "azure-blob", "s3")


@dataclass(frozen=True)
class BackendUrl:
    scheme: str
    path: str  # for local schemes
    account: str  # for azure schemes: the storage account; sqs: the region; s3: the bucket
    name: str  # queue or container name; s3: the key prefix ("" for none)
    options: dict[str, str]


def parse_backend_url(url: str, setting: str, allowed: tuple[str, ...]) -> BackendUrl:
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme not in allowed:
        raise ConfigError(
            f"{setting} = {url!r}: unknown scheme {scheme!r}; use one of "
            + ", ".join(f"{s}://…" for s in allowed)
        )
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if scheme.startswith("azure-"):
        name = parts.path.strip("/")
        if not parts.netloc or not name or "/" in name:
            raise ConfigError(f"{setting} = {url!r}: expected {scheme}://ACCOUNT/NAME")
        return BackendUrl(scheme, "", parts.netloc, name, options)
    if scheme == "sqs":
        name = parts.path.strip("/")
        if not parts.netloc or not name or "/" in name:
            raise ConfigError(f"{setting} = {url!r}: expected sqs://REGION/QUEUE (e.g. sqs://eu-west-1/work)")
        return BackendUrl(scheme, "", parts.netloc, name, options)
    if scheme == "s3":
        prefix = parts.path.strip("/")
        if not parts.netloc or "//" in prefix:
            raise ConfigError(f"{setting} = {url!r}: expected s3://BUCKET or s3://BUCKET/PREFIX")
        return BackendUrl(scheme, "", parts.netloc, prefix, options)
    path = parts.netloc + parts.path
    if not path:
        raise ConfigError(f"{setting} = {url!r}: expected {scheme}:///ABSOLUTE/PATH")
    return BackendUrl(scheme, path, "", options.get("queue", ""), options)


def connection_string(env: Mapping[str, str]) -> str | None:
    """A storage connection string (Azurite, or keys where identities are not available)."""
    return env.get(CONNECTION_STRING_ENV) or None


API_QUEUE_SUFFIX = "-api"


def api_queue_url(url: str) -> str:
    """The queue of the work routed to the metered API, beside the fleet's queue: the same SQLite file
    under the name ``<name>-api``, or the Azure queue ``<name>-api`` in the same account. Work moved
    there is done by API workers only, so no message bounces between agents of the two kinds."""
    parsed = parse_backend_url(url, "SPOTKIT_QUEUE", QUEUE_SCHEMES)
    if parsed.scheme == "sqlite":
        return f"sqlite://{parsed.path}?queue={parsed.name or 'work'}{API_QUEUE_SUFFIX}"
    return f"{parsed.scheme}://{parsed.account}/{parsed.name}{API_QUEUE_SUFFIX}"
