"""Stack configuration, typed and validated before any resource is declared.

Every error names the key and the fix (``pulumi config set spotkit:KEY VALUE``), so a bad stack
fails in the first second of ``pulumi up`` instead of half-way through creating resources.
Secrets (API keys, tokens, the webhook URL) are read only with ``get_secret`` and travel to nodes
through Key Vault, never through custom data.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra import names
from infra.gateway_config import GatewayConfig, GatewayConfigError, parse_gateway

NAMESPACE = "spotkit"
# T4 sizes (NCasT4_v3) — the only family the node image and the memory planner are built for.
T4_SIZES = ("Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3", "Standard_NC16as_T4_v3", "Standard_NC64as_T4_v3")
DISK_SKUS = ("Premium_LRS", "StandardSSD_LRS", "Standard_LRS", "Premium_ZRS", "StandardSSD_ZRS")
TRANSLATORS = ("vllm", "openai", "none")
REQUIRED_TAGS = ("environment", "cost-center")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,20}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OPENAI_ACCOUNT = re.compile(r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[A-Za-z0-9._()-]{1,90}/providers/"
                             r"Microsoft\.CognitiveServices/accounts/[A-Za-z0-9][A-Za-z0-9-]{1,63}$")
_OPENAI_ENDPOINT = re.compile(r"^https://[a-z0-9][a-z0-9-]{1,62}\.(openai\.azure\.com|cognitiveservices\.azure\.com)/?$")
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_DEPLOYMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")


class StackConfigError(ValueError):
    """One bad key, named, with the fix."""


@dataclass(frozen=True)
class StackConfig:
    location: str
    admin_ssh_public_key: str
    operator_cidr: str
    tags: dict[str, str]
    name_prefix: str = "spotkit"
    vm_size: str = "Standard_NC4as_T4_v3"
    fallback_sizes: tuple[str, ...] = ()
    slot_count: int = 2
    min_running: int = 0
    spot_price_cap_per_hour: float = -1.0
    data_disk_size_gb: int = 256
    data_disk_sku: str = "Premium_LRS"
    models: tuple[str, ...] = ("large-v3",)
    translator_provider: str = "vllm"
    alert_emails: tuple[str, ...] = ()
    spotkit_pip_spec: str = "spotkit[gpu]"
    segment_retention_days: int = 14
    queue_shards: int = 1  # the work queue as N Azure queues (docs/scale.md): past ~460 nodes a queue
    queue_pack: int = 1  # work items a message: queue operations per segment fall from 4.3 to under 1
    vnet_cidr: str = "10.40.0.0/16"
    translator_model: str = "Qwen/Qwen3-8B-AWQ"
    # Azure OpenAI as the metered API (Entra ID through the identities; no key): its resource id
    # scopes the "Cognitive Services OpenAI User" role, its endpoint goes to the nodes.
    azure_openai_resource_id: str = ""
    azure_openai_endpoint: str = ""
    azure_openai_api_version: str = "2024-10-21"
    # Work routed to the metered API: how many API workers the controller may run, and a monthly cap.
    api_workers: int = 0
    api_budget_usd: float | None = None
    api_model: str = "whisper-1"
    runbook_base_url: str = ""  # where the alerts' runbook links point; "" = the deployed version's docs
    gateway: GatewayConfig = field(default_factory=GatewayConfig)  # `spotkit serve` on the controller VM
    # Secret values (pulumi.Output[str] when given); never rendered into custom data.
    secrets: dict[str, Any] = field(default_factory=dict)

    @property
    def all_sizes(self) -> tuple[str, ...]:
        return (self.vm_size, *self.fallback_sizes)

    @property
    def metered_api(self) -> str:
        """The flavour of metered API the nodes call (runtime ``SPOTKIT_METERED_API``)."""
        return "azure-openai" if self.azure_openai_resource_id else "openai"


def _fix(key: str, example: str) -> str:
    return f"(pulumi config set {NAMESPACE}:{key} {example})"


def parse_stack_config(raw: Mapping[str, Any], secrets: Mapping[str, Any] | None = None) -> StackConfig:
    """Validate plain config values (as strings or parsed YAML); raises `StackConfigError`."""

    def text(key: str, default: str | None = None) -> str:
        value = raw.get(key, default)
        if value is None or str(value).strip() == "":
            raise StackConfigError(f"{NAMESPACE}:{key} is required {_fix(key, _EXAMPLES.get(key, 'VALUE'))}")
        return str(value).strip()

    def number(key: str, default: float, kind: type = float) -> Any:
        value = raw.get(key, default)
        try:
            if isinstance(value, bool):
                raise TypeError("a boolean is not a number")
            parsed = kind(value)
            if kind is float and not math.isfinite(parsed):
                raise ValueError("not a finite number")
        except (TypeError, ValueError, OverflowError):
            raise StackConfigError(f"{NAMESPACE}:{key} = {value!r} is not a {kind.__name__} "
                                   f"{_fix(key, str(default))}") from None
        return parsed

    def listing(key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = raw.get(key, list(default))
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise StackConfigError(f"{NAMESPACE}:{key} must be a list {_fix(key, _EXAMPLES.get(key, 'a,b'))}")
        return tuple(str(v) for v in value)

    location = text("location")
    if not re.match(r"^[a-z0-9]+$", location):
        raise StackConfigError(f"{NAMESPACE}:location = {location!r} is not an Azure region name like eastus "
                               f"{_fix('location', 'eastus')}")
    vm_size = text("vmSize", "Standard_NC4as_T4_v3")
    fallback = listing("fallbackSizes")
    for key, size in [("vmSize", vm_size), *(("fallbackSizes", s) for s in fallback)]:
        if size not in T4_SIZES:
            raise StackConfigError(f"{NAMESPACE}:{key} has unknown VM size {size!r}; use one of "
                                   f"{', '.join(T4_SIZES)} {_fix(key, T4_SIZES[0])}")
    slot_count = number("slotCount", 2, int)
    if not 0 <= slot_count <= 50:
        raise StackConfigError(f"{NAMESPACE}:slotCount = {slot_count} must be 0..50 (the most spot VMs this "
                               f"stack may run; check your spot vCPU quota) {_fix('slotCount', '2')}")
    min_running = number("minRunning", 0, int)
    if not 0 <= min_running <= slot_count:
        raise StackConfigError(f"{NAMESPACE}:minRunning = {min_running} must be 0..slotCount ({slot_count}) "
                               f"{_fix('minRunning', '0')}")
    max_price = number("maxPricePerHour", -1.0, float)
    if max_price != -1 and not 0 < max_price <= 100:
        raise StackConfigError(f"{NAMESPACE}:maxPricePerHour = {max_price} must be -1 (up to the pay-as-you-go "
                               f"price) or a positive USD/hour price {_fix('maxPricePerHour', '0.15')}")
    if max_price != -1 and round(max_price, 5) != max_price:
        raise StackConfigError(f"{NAMESPACE}:maxPricePerHour = {max_price} has more than 5 decimals (Azure's "
                               f"limit) {_fix('maxPricePerHour', '0.15')}")
    disk_gb = number("dataDiskSizeGb", 256, int)
    if not 32 <= disk_gb <= 4096:
        raise StackConfigError(f"{NAMESPACE}:dataDiskSizeGb = {disk_gb} must be 32..4096 (models and caches "
                               f"live there) {_fix('dataDiskSizeGb', '256')}")
    disk_sku = text("dataDiskSku", "Premium_LRS")
    if disk_sku not in DISK_SKUS:
        raise StackConfigError(f"{NAMESPACE}:dataDiskSku = {disk_sku!r}; use one of {', '.join(DISK_SKUS)} "
                               f"{_fix('dataDiskSku', 'Premium_LRS')}")
    translator = text("translatorProvider", "vllm")
    if translator not in TRANSLATORS:
        raise StackConfigError(f"{NAMESPACE}:translatorProvider = {translator!r}; use one of "
                               f"{', '.join(TRANSLATORS)} {_fix('translatorProvider', 'vllm')}")
    emails = listing("alertEmails")
    for email in emails:
        if not _EMAIL.match(email):
            raise StackConfigError(f"{NAMESPACE}:alertEmails has {email!r}, not an e-mail address "
                                   f"{_fix('alertEmails', 'oncall@example.com')}")
    ssh_key = text("adminSshPublicKey")
    if not re.match(r"^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$", ssh_key):
        raise StackConfigError(f"{NAMESPACE}:adminSshPublicKey is not an OpenSSH public key "
                               f"{_fix('adminSshPublicKey', _EXAMPLES['adminSshPublicKey'])}")
    operator_cidr = text("operatorCidr")
    try:
        network = ipaddress.ip_network(operator_cidr, strict=False)
    except ValueError:
        raise StackConfigError(f"{NAMESPACE}:operatorCidr = {operator_cidr!r} is not a CIDR "
                               f"{_fix('operatorCidr', '203.0.113.7/32')}") from None
    if network.prefixlen < 8:
        raise StackConfigError(f"{NAMESPACE}:operatorCidr = {operator_cidr} opens SSH to too much of the "
                               f"internet; name your office or VPN range {_fix('operatorCidr', '203.0.113.7/32')}")
    tags = raw.get("tags", {})
    if not isinstance(tags, Mapping):
        raise StackConfigError(f"{NAMESPACE}:tags must be a map {_fix('tags', _EXAMPLES['tags'])}")
    for tag in REQUIRED_TAGS:
        if not str(tags.get(tag, "")).strip():
            raise StackConfigError(f"{NAMESPACE}:tags needs {tag!r} (the guardrails require environment and "
                                   f"cost-center) --path: pulumi config set --path '{NAMESPACE}:tags.{tag}' VALUE")
    prefix = text("namePrefix", "spotkit")
    if not _NAME.match(prefix):
        raise StackConfigError(f"{NAMESPACE}:namePrefix = {prefix!r} must be 2-21 lowercase letters, digits or "
                               f"'-', starting with a letter {_fix('namePrefix', 'spotkit')}")
    if names.too_long(prefix):
        raise StackConfigError(f"{NAMESPACE}:namePrefix = {prefix!r} {names.too_long(prefix)}; use a shorter "
                               f"prefix {_fix('namePrefix', 'spotkit')}")
    pip_spec = text("spotkitPipSpec", "spotkit[gpu]")
    if any(c in pip_spec for c in "\n\r'\"`$"):
        raise StackConfigError(f"{NAMESPACE}:spotkitPipSpec must be one pip requirement without quotes "
                               f"{_fix('spotkitPipSpec', 'spotkit[gpu]')}")
    retention = number("segmentRetentionDays", 14, int)
    if not 1 <= retention <= 3650:
        raise StackConfigError(f"{NAMESPACE}:segmentRetentionDays = {retention} must be 1..3650 "
                               f"{_fix('segmentRetentionDays', '14')}")
    shards, pack = number("queueShards", 1, int), number("queuePack", 1, int)
    if not 1 <= shards <= 64:
        raise StackConfigError(f"{NAMESPACE}:queueShards = {shards} must be 1..64 (one Azure queue carries about "
                               f"460 nodes unpacked; docs/scale.md) {_fix('queueShards', '4')}")
    if not 1 <= pack <= 32:
        raise StackConfigError(f"{NAMESPACE}:queuePack = {pack} must be 1..32 (work items a message) "
                               f"{_fix('queuePack', '8')}")
    models = listing("models", ("large-v3",))
    if not models or any(not m.strip() for m in models):
        raise StackConfigError(f"{NAMESPACE}:models must name at least one model, the first is what nodes "
                               f"transcribe with {_fix('models', 'large-v3')}")
    vnet_cidr = text("vnetCidr", "10.40.0.0/16")
    try:
        vnet = ipaddress.ip_network(vnet_cidr, strict=True)
    except ValueError as err:
        raise StackConfigError(f"{NAMESPACE}:vnetCidr = {vnet_cidr!r} is not a network address ({err}) "
                               f"{_fix('vnetCidr', '10.40.0.0/16')}") from None
    if vnet.version != 4 or not vnet.is_private or not 8 <= vnet.prefixlen <= 22:
        raise StackConfigError(f"{NAMESPACE}:vnetCidr = {vnet_cidr} must be a private IPv4 range from /8 to /22 "
                               f"(three /24 subnets are cut from it) {_fix('vnetCidr', '10.40.0.0/16')}")
    translator_model = text("translatorModel", "Qwen/Qwen3-8B-AWQ" if translator == "vllm" else "gpt-4o-mini")
    if not _DEPLOYMENT.match(translator_model):
        raise StackConfigError(f"{NAMESPACE}:translatorModel = {translator_model!r} is not a model or deployment "
                               f"name {_fix('translatorModel', 'gpt-4o-mini')}")
    if translator_model in models:
        raise StackConfigError(f"{NAMESPACE}:models lists {translator_model!r}, the translator's model: models are "
                               f"the Whisper models nodes transcribe with (the first) or keep ready (the rest); the "
                               f"LLM is {NAMESPACE}:translatorModel {_fix('models', 'large-v3')}")
    aoai_id = str(raw.get("azureOpenAiResourceId") or "").strip()
    aoai_endpoint = str(raw.get("azureOpenAiEndpoint") or "").strip()
    aoai_version = text("azureOpenAiApiVersion", "2024-10-21")
    if aoai_id and not _OPENAI_ACCOUNT.match(aoai_id):
        raise StackConfigError(f"{NAMESPACE}:azureOpenAiResourceId is not an Azure OpenAI resource id "
                               f"(/subscriptions/…/providers/Microsoft.CognitiveServices/accounts/NAME) "
                               f"{_fix('azureOpenAiResourceId', _EXAMPLES['azureOpenAiResourceId'])}")
    if bool(aoai_id) != bool(aoai_endpoint):
        missing = "azureOpenAiEndpoint" if aoai_id else "azureOpenAiResourceId"
        raise StackConfigError(f"{NAMESPACE}:{missing} is required with Azure OpenAI (the resource id scopes the "
                               f"role, the endpoint is where nodes call) {_fix(missing, _EXAMPLES[missing])}")
    if aoai_endpoint and not _OPENAI_ENDPOINT.match(aoai_endpoint):
        raise StackConfigError(f"{NAMESPACE}:azureOpenAiEndpoint = {aoai_endpoint!r} is not an Azure OpenAI "
                               f"endpoint {_fix('azureOpenAiEndpoint', _EXAMPLES['azureOpenAiEndpoint'])}")
    if not _API_VERSION.match(aoai_version):
        raise StackConfigError(f"{NAMESPACE}:azureOpenAiApiVersion = {aoai_version!r} is not an API version "
                               f"like 2024-10-21 {_fix('azureOpenAiApiVersion', '2024-10-21')}")
    if translator == "openai" and not aoai_id and "openaiApiKey" not in (secrets or {}):
        raise StackConfigError(f"{NAMESPACE}:translatorProvider = openai needs a metered API: set "
                               f"{NAMESPACE}:azureOpenAiResourceId and azureOpenAiEndpoint (Entra ID, no key) or the "
                               f"secret {NAMESPACE}:openaiApiKey "
                               f"(pulumi config set --secret {NAMESPACE}:openaiApiKey KEY)")
    has_api = bool(aoai_id) or "openaiApiKey" in (secrets or {})
    api_workers = number("apiWorkers", 2 if has_api else 0, int)
    if not 0 <= api_workers <= 16:
        raise StackConfigError(f"{NAMESPACE}:apiWorkers = {api_workers} must be 0..16 (API workers on the controller "
                               f"for work routed to the metered API) {_fix('apiWorkers', '2')}")
    if api_workers and not has_api:
        raise StackConfigError(f"{NAMESPACE}:apiWorkers = {api_workers} needs a metered API: set "
                               f"{NAMESPACE}:azureOpenAiResourceId and azureOpenAiEndpoint, or the secret "
                               f"{NAMESPACE}:openaiApiKey {_fix('apiWorkers', '0')}")
    budget = raw.get("apiBudgetUsd")
    api_budget = None if budget is None or str(budget).strip() == "" else number("apiBudgetUsd", 0.0, float)
    if api_budget is not None and not 0 <= api_budget <= 1e7:
        raise StackConfigError(f"{NAMESPACE}:apiBudgetUsd = {api_budget} must be 0 or more USD a month "
                               f"{_fix('apiBudgetUsd', '500')}")
    api_model = text("apiModel", "whisper-1")
    if not _DEPLOYMENT.match(api_model):
        raise StackConfigError(f"{NAMESPACE}:apiModel = {api_model!r} is not a model or deployment name "
                               f"{_fix('apiModel', 'whisper-1')}")
    runbooks = str(raw.get("runbookBaseUrl") or "").strip()
    if runbooks and not re.match(r"^https://[^\s\"'<>]+$", runbooks):
        raise StackConfigError(f"{NAMESPACE}:runbookBaseUrl = {runbooks!r} must be an https URL where "
                               f"docs/runbooks is served {_fix('runbookBaseUrl', 'https://wiki.example.com/spotkit/runbooks')}")
    gateway_port = number("gatewayPort", 0, int)
    if gateway_port and not 1024 <= gateway_port <= 65535:
        raise StackConfigError(f"{NAMESPACE}:gatewayPort = {gateway_port} must be 0 (no gateway) or a port from "
                               f"1024 to 65535 (the service runs unprivileged) {_fix('gatewayPort', '8080')}")
    try:
        gateway = parse_gateway(raw, gateway_port)
    except GatewayConfigError as err:
        raise StackConfigError(str(err)) from None
    return StackConfig(
        location=location, admin_ssh_public_key=ssh_key, operator_cidr=str(network),
        tags={str(k): str(v) for k, v in tags.items()}, name_prefix=prefix, vm_size=vm_size,
        fallback_sizes=fallback, slot_count=slot_count, min_running=min_running,
        spot_price_cap_per_hour=max_price, data_disk_size_gb=disk_gb, data_disk_sku=disk_sku,
        models=models, translator_provider=translator, alert_emails=emails,
        spotkit_pip_spec=pip_spec, segment_retention_days=retention, queue_shards=shards, queue_pack=pack,
        vnet_cidr=str(vnet), translator_model=translator_model, azure_openai_resource_id=aoai_id,
        azure_openai_endpoint=aoai_endpoint.rstrip("/"), azure_openai_api_version=aoai_version,
        api_workers=api_workers, api_budget_usd=api_budget, api_model=api_model, runbook_base_url=runbooks,
        gateway=gateway, secrets=dict(secrets or {}),
    )


# Keys read as secrets; each becomes a Key Vault secret the nodes fetch with their identity.
SECRET_KEYS = {"alertWebhook": "alert-webhook", "hfToken": "hf-token", "openaiApiKey": "openai-api-key"}

_EXAMPLES = {
    "location": "eastus",
    "adminSshPublicKey": '"$(cat ~/.ssh/id_ed25519.pub)"',
    "operatorCidr": "203.0.113.7/32",
    "tags": "--path 'spotkit:tags.environment' dev",
    "alertEmails": "oncall@example.com",
    "fallbackSizes": "Standard_NC8as_T4_v3",
    "azureOpenAiResourceId": "/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.CognitiveServices/accounts/NAME",
    "azureOpenAiEndpoint": "https://NAME.openai.azure.com",
}


def load_stack_config() -> StackConfig:
    """Read ``spotkit:*`` from the current stack (inside a Pulumi program)."""
    import pulumi
    import pulumi.runtime

    config = pulumi.Config(NAMESPACE)
    keys = ("location", "vmSize", "fallbackSizes", "slotCount", "minRunning", "maxPricePerHour",
            "dataDiskSizeGb", "dataDiskSku", "models", "translatorProvider", "alertEmails",
            "adminSshPublicKey", "operatorCidr", "tags", "namePrefix", "spotkitPipSpec",
            "segmentRetentionDays", "vnetCidr", "translatorModel", "azureOpenAiResourceId", "azureOpenAiEndpoint",
            "azureOpenAiApiVersion", "apiWorkers", "apiBudgetUsd", "apiModel", "runbookBaseUrl", "gatewayPort",
            "gatewayTlsCertificate", "gatewayPublic", "gatewayAllowedCidrs", "queueShards", "queuePack")
    raw: dict[str, Any] = {}
    for key in keys:
        listed = ("fallbackSizes", "models", "alertEmails", "tags", "gatewayAllowedCidrs")
        value = config.get_object(key) if key in listed else config.get(key)
        if value is not None:
            raw[key] = value
    secrets: dict[str, Any] = {}
    for key in SECRET_KEYS:
        if pulumi.runtime.is_config_secret(f"{NAMESPACE}:{key}"):
            secrets[key] = config.get_secret(key)
        elif config.get(key) is not None:
            raise StackConfigError(f"{NAMESPACE}:{key} must be a secret, never plain text in the stack file: "
                                   f"pulumi config set --secret {NAMESPACE}:{key} VALUE")
    return parse_stack_config(raw, secrets)
