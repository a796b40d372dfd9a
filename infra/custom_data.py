"""Azure custom data (cloud-init) for spotkit GPU nodes and the controller host.

The Pulumi program calls `render_node_cloud_config` / `render_controller_cloud_config` and passes the
result through `encode_custom_data`. The documents themselves live in ``images/`` (cloud-config
templates and systemd units) so they can be read and diffed on their own; this module only fills them
in, with `string.Template` (``${name}``; ``$$`` is a literal dollar).

Why a renderer rather than f-strings in the Pulumi program:

* Every value is validated before it lands in the document, and raises `ValueError` naming the field.
  A value that went in unchecked could break the YAML or add a shell command to ``bootcmd``/``runcmd``
  on every node. Scalars go in as quoted YAML strings; file bodies go into indented block scalars.
* Custom data is readable by anyone who can read the VM model, so it carries names only: the Key Vault,
  the secret names and the identity's client id. Nodes fetch secret values at boot with their managed
  identity. The config classes have no field that could hold a secret value.
* Azure rejects custom data over 64 KiB decoded; `encode_custom_data` fails first, with the size.

``tests/infra/test_images.py`` validates the rendered documents with ``cloud-init schema``, the units with
``systemd-analyze verify``, and runs the boot scripts (disk preparation, Key Vault fetch) locally.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

IMAGES = Path(__file__).resolve().parents[1] / "images"
MAX_CUSTOM_DATA_BYTES = 65_535

# Key Vault secret name -> environment variable it becomes in /etc/spotkit/secrets.env (root-only,
# read by the units with EnvironmentFile=). Only names listed here may be requested.
SECRET_ENV_VARS: dict[str, str] = {
    "alert-webhook": "SPOTKIT_ALERT_WEBHOOK",  # runtime Settings.alert_webhook: eviction/on-call alerts
    "hf-token": "HF_TOKEN",  # Hugging Face token, for gated models (read by huggingface_hub)
    "openai-api-key": "OPENAI_API_KEY",  # the translator's openai provider (read by the OpenAI client)
}
# The model that ships inside the spotkit package (runtime.models.PACKAGED_MODEL);
# any other model is downloaded once to the data disk by spotkit-models.service.
PACKAGED_MODEL = "tiny.en"
# The agent drains within this after SIGTERM; spotkit-agent.service's TimeoutStopSec=25 leaves margin,
# and both fit Azure's 30 s preemption notice.
SIGTERM_GRACE_SECONDS = 20
CONTROLLER_HOME = "/var/lib/spotkit"  # StateDirectory=spotkit in spotkit-controller.service

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_VAULT = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]")
_PATH = re.compile(r"(/[A-Za-z0-9][A-Za-z0-9._-]*)+")
_BACKEND = r"://[a-z0-9]{3,24}/[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])(?:\?[A-Za-z0-9._~=&%-]*)?"
_QUEUE_URL = re.compile("azure-queue" + _BACKEND)
_STORE_URL = re.compile("azure-blob" + _BACKEND)
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
_PIP_FORBIDDEN = set("'\"\\$`")


@dataclass(frozen=True)
class NodeBootConfig:
    """One spot GPU node slot. ``node_name`` is the VM name (Scheduled Events are matched against it)."""

    node_name: str
    queue_url: str
    store_url: str
    identity_client_id: str
    key_vault_name: str
    spotkit_pip_spec: str
    model: str = "large-v3"
    compute_type: str = "int8_float16"
    metrics_port: int = 9400
    secret_names: tuple[str, ...] = ()  # Key Vault secret names, see SECRET_ENV_VARS
    mount_path: str = "/mnt/spotkit"
    data_disk_lun: int = 0
    prefetch_models: tuple[str, ...] = ()  # the stack's models[1:]: pulled beside `model`, ready to switch to
    translator: str = "none"  # vllm (on the node's GPU) | openai (the metered API) | none
    translator_model: str = ""  # the vLLM model, or the metered API's model / Azure OpenAI deployment
    azure_openai_endpoint: str = ""  # set: the metered API is Azure OpenAI, reached with the node's identity
    azure_openai_api_version: str = "2024-10-21"
    runbook_base_url: str = ""  # the stack's runbookBaseUrl: where alerts' runbook links point


@dataclass(frozen=True)
class ControllerBootConfig:
    """The always-on controller host; ``slot_vm_names`` are the node VMs it may start and stop."""

    queue_url: str
    store_url: str
    identity_client_id: str
    key_vault_name: str
    spotkit_pip_spec: str
    subscription_id: str
    resource_group: str
    slot_vm_names: tuple[str, ...]
    secret_names: tuple[str, ...] = ()  # Key Vault secret names, see SECRET_ENV_VARS
    slot_vm_sizes: tuple[str, ...] = ()  # one per slot, same order (vmSize's slots, then fallbacks'); () = all vm_size
    vm_size: str = "Standard_NC4as_T4_v3"  # the slots' size and region: the spot price the policy uses
    region: str = "eastus"
    api_workers: int = 0  # the most API workers for work routed to the metered API (0: no API path)
    api_budget_usd: float | None = None  # monthly cap on metered spend; None: no cap
    api_model: str = "whisper-1"
    # The fleet's transcription model (the stack's models[0]): segments ask for it by name, so the API
    # workers serve it under that name and the gateway submits for it.
    model: str = PACKAGED_MODEL
    min_running: int = 0  # slots the controller keeps running (the stack's minRunning)
    azure_openai_endpoint: str = ""
    azure_openai_api_version: str = "2024-10-21"
    runbook_base_url: str = ""
    gateway_port: int = 0  # > 0: `spotkit serve` on this port beside the controller (docs/gateway.md)
    gateway_tls_certificate: str = ""  # a Key Vault certificate: fetch-tls writes it, the gateway serves HTTPS


_KV_OBJECT = re.compile(r"[0-9A-Za-z-]+")
GATEWAY_TLS_FILE = "/etc/spotkit/tls/gateway.pem"  # fetch-tls writes it (root, group spotkit-svc, 0640)
_RUNBOOKS = re.compile(r"https://[A-Za-z0-9._~:/?#@!&*+,;=%-]+")


def _fail(where: str, value: object, why: str) -> ValueError:
    return ValueError(f"{where} = {value!r}: {why}")


def _match(where: str, value: object, pattern: re.Pattern[str], why: str, max_len: int = 256) -> str:
    if not isinstance(value, str) or len(value) > max_len or not pattern.fullmatch(value):
        raise _fail(where, value, why)
    return value


def _port(where: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(where, value, f"must be an integer from {low} to {high}")
    return value


def _names(where: str, values: object, pattern: re.Pattern[str], why: str, max_len: int) -> tuple[str, ...]:
    if not isinstance(values, tuple | list):
        raise _fail(where, values, "must be a tuple of names")
    names = tuple(_match(f"{where}[{i}]", v, pattern, why, max_len) for i, v in enumerate(values))
    if len(set(names)) != len(names):
        raise _fail(where, values, "has duplicates")
    return names


def _common(kind: str, cfg: NodeBootConfig | ControllerBootConfig) -> dict[str, str]:
    """Checks the fields both configs share; returns the environment they contribute."""
    queue = _match(f"{kind}.queue_url", cfg.queue_url, _QUEUE_URL, "must be azure-queue://ACCOUNT/QUEUE")
    store = _match(f"{kind}.store_url", cfg.store_url, _STORE_URL, "must be azure-blob://ACCOUNT/CONTAINER")
    client = _match(f"{kind}.identity_client_id", cfg.identity_client_id, _GUID,
                    "must be the client id (a GUID) of the VM's user-assigned managed identity")
    vault = _match(f"{kind}.key_vault_name", cfg.key_vault_name, _VAULT,
                   "must be a Key Vault name (3-24 letters, digits and hyphens; starts with a letter)")
    spec = cfg.spotkit_pip_spec
    if (not isinstance(spec, str) or not spec.strip() or len(spec) > 2000 or set(spec) & _PIP_FORBIDDEN
            or not all(32 <= ord(c) < 127 for c in spec)):
        raise _fail(f"{kind}.spotkit_pip_spec", spec,
                    "must be one pip requirement on one line, printable ASCII, without quotes, $ or backslashes")
    secrets = _names(f"{kind}.secret_names", cfg.secret_names, _NAME, "must be a Key Vault secret name", 127)
    for name in secrets:
        if name not in SECRET_ENV_VARS:
            raise _fail(f"{kind}.secret_names", name, f"unknown secret; known: {', '.join(sorted(SECRET_ENV_VARS))}")
    env = {"SPOTKIT_QUEUE": queue, "SPOTKIT_STORE": store, "AZURE_CLIENT_ID": client, "KEY_VAULT_NAME": vault}
    if cfg.runbook_base_url:
        env["SPOTKIT_RUNBOOK_BASE_URL"] = _match(f"{kind}.runbook_base_url", cfg.runbook_base_url, _RUNBOOKS,
                                                 "must be an https URL where docs/runbooks is served")
    if secrets:
        env["KEY_VAULT_SECRETS"] = ",".join(f"{name}:{SECRET_ENV_VARS[name]}" for name in secrets)
    return env


def _translator_env(cfg: NodeBootConfig) -> dict[str, str]:
    """The translator and metered-API settings of a node (runtime `Settings.translator`, `metered_api`)."""
    if cfg.translator not in ("none", "vllm", "openai"):
        raise _fail("NodeBootConfig.translator", cfg.translator, "must be none, vllm or openai")
    env = {"SPOTKIT_TRANSLATOR": cfg.translator}
    if cfg.translator != "none":
        env["SPOTKIT_TRANSLATOR_MODEL"] = _match("NodeBootConfig.translator_model", cfg.translator_model, _MODEL,
                                                 "must be a model or deployment name")
    return {**env, **_metered_env("NodeBootConfig", cfg.azure_openai_endpoint, cfg.azure_openai_api_version)}


def _metered_env(kind: str, endpoint: str, version: str) -> dict[str, str]:
    """Azure OpenAI as the metered API (reached with the VM's identity), or nothing: the openai default."""
    if not endpoint:
        return {}
    if not re.fullmatch(r"https://[a-z0-9][a-z0-9-]{1,62}\.(openai|cognitiveservices)\.azure\.com", endpoint):
        raise _fail(f"{kind}.azure_openai_endpoint", endpoint, "must be https://NAME.openai.azure.com")
    return {"SPOTKIT_METERED_API": "azure-openai", "AZURE_OPENAI_ENDPOINT": endpoint,
            "OPENAI_API_VERSION": _match(f"{kind}.azure_openai_api_version", version, _API_VERSION,
                                         "must be an API version like 2024-10-21")}


def _env_file(env: dict[str, str]) -> str:
    header = "# Written by cloud-init (infra/custom_data.py). No secrets here: see /etc/spotkit/secrets.env."
    return "\n".join([header, *(f"{key}={value}" for key, value in env.items())])


def _block(text: str) -> str:
    """A file body indented for a ``content: |`` block scalar inside a write_files entry."""
    lines = text.rstrip("\n").split("\n")
    if not lines[0] or lines[0][0].isspace():
        raise ValueError(f"file body must start with a non-blank, unindented line, got {lines[0]!r}")
    return "\n".join(f"      {line}" if line else "" for line in lines)


def _render(relative: str, values: dict[str, str]) -> str:
    return Template((IMAGES / relative).read_text(encoding="utf-8")).substitute(values)


def _finish(text: str) -> str:
    if not text.startswith("#cloud-config\n"):
        raise ValueError("a rendered document must start with '#cloud-config'")
    encode_custom_data(text)  # size check
    return text


def render_node_cloud_config(cfg: NodeBootConfig) -> str:
    """cloud-config for one spot GPU node: data disk, spotkit venv, model cache, agent unit."""
    env = _common("NodeBootConfig", cfg)
    node = _match("NodeBootConfig.node_name", cfg.node_name, _NAME,
                  "must be an Azure VM name (letters, digits, '.', '_', '-'; no spaces)", 64)
    model = _match("NodeBootConfig.model", cfg.model, _MODEL,
                   "must be a faster-whisper model size or a Hugging Face repo id (owner/name)")
    compute = _match("NodeBootConfig.compute_type", cfg.compute_type, _NAME, "must be a CTranslate2 compute type")
    port = _port("NodeBootConfig.metrics_port", cfg.metrics_port, 0, 65535)
    lun = _port("NodeBootConfig.data_disk_lun", cfg.data_disk_lun, 0, 63)
    mount = _match("NodeBootConfig.mount_path", cfg.mount_path, _PATH, "must be an absolute path like /mnt/spotkit")
    if mount in ("/mnt", "/"):
        raise _fail("NodeBootConfig.mount_path", mount, "must be a directory of its own (/mnt is the temp disk)")
    models_dir = f"{mount}/models"
    env = {
        "SPOTKIT_QUEUE": env.pop("SPOTKIT_QUEUE"),
        "SPOTKIT_STORE": env.pop("SPOTKIT_STORE"),
        "SPOTKIT_NODE_NAME": node,
        "SPOTKIT_HOME": f"{mount}/state",
        "SPOTKIT_CACHE_DIR": f"{mount}/cache",
        "SPOTKIT_SCHEDULED_EVENTS": "on",
        "SPOTKIT_BOOT_CLOCK": "os",  # a VM slot starts with its OS boot
        "SPOTKIT_DEVICE": "cuda",
        "SPOTKIT_COMPUTE_TYPE": compute,
        "SPOTKIT_MODEL": model,
        "SPOTKIT_MODEL_PATH": "" if model == PACKAGED_MODEL else f"{models_dir}/{model.replace('/', '--')}",
        "SPOTKIT_METRICS_PORT": str(port),
        "SPOTKIT_SIGTERM_GRACE_SECONDS": str(SIGTERM_GRACE_SECONDS),
        "HF_HOME": models_dir,
        **env,
    }
    if not env["SPOTKIT_MODEL_PATH"]:
        del env["SPOTKIT_MODEL_PATH"]
    env.update(_translator_env(cfg))
    prefetch = _names("NodeBootConfig.prefetch_models", cfg.prefetch_models, _MODEL,
                      "must be a faster-whisper model size or a Hugging Face repo id", 128)
    if prefetch:
        env["SPOTKIT_PREFETCH_MODELS"] = ",".join(prefetch)
    units = {"mount_path": mount}
    text = _render("node/cloud-config.yaml", {
        "agent_env": _block(_env_file(env)),
        "agent_unit": _block(_render("node/spotkit-agent.service", units)),
        "models_unit": _block(_render("node/spotkit-models.service", units)),
        "data_disk": json.dumps(f"/dev/disk/azure/scsi1/lun{lun}"),
        "mount_path": json.dumps(mount),
        "state_dir": json.dumps(env["SPOTKIT_HOME"]),
        "cache_dir": json.dumps(env["SPOTKIT_CACHE_DIR"]),
        "models_dir": json.dumps(models_dir),
        "pip_cache_env": json.dumps(f"PIP_CACHE_DIR={mount}/pip-cache"),
        "pip_spec": json.dumps(cfg.spotkit_pip_spec),
    })
    return _finish(text)


def render_controller_cloud_config(cfg: ControllerBootConfig) -> str:
    """cloud-config for the controller host: spotkit venv and the controller unit (no data disk)."""
    env = _common("ControllerBootConfig", cfg)
    subscription = _match("ControllerBootConfig.subscription_id", cfg.subscription_id, _GUID,
                          "must be an Azure subscription id (a GUID)")
    group = _match("ControllerBootConfig.resource_group", cfg.resource_group, _NAME,
                   "must be a resource group name (letters, digits, '.', '_', '-')", 90)
    slots = _names("ControllerBootConfig.slot_vm_names", cfg.slot_vm_names, _NAME,
                   "must be an Azure VM name (letters, digits, '.', '_', '-'; no spaces)", 64)
    if not slots:
        raise _fail("ControllerBootConfig.slot_vm_names", cfg.slot_vm_names, "must name at least one node VM")
    env = {
        "SPOTKIT_QUEUE": env.pop("SPOTKIT_QUEUE"),
        "SPOTKIT_STORE": env.pop("SPOTKIT_STORE"),
        "SPOTKIT_HOME": CONTROLLER_HOME,
        "SPOTKIT_SUBSCRIPTION_ID": subscription,
        "SPOTKIT_RESOURCE_GROUP": group,
        "SPOTKIT_SLOT_VMS": ",".join(slots) if not cfg.slot_vm_sizes else ",".join(
            f"{name}:{size}" for name, size in zip(slots, _slot_sizes(cfg, slots), strict=True)),
        "SPOTKIT_VM_SIZE": _match("ControllerBootConfig.vm_size", cfg.vm_size, _NAME, "must be a VM size"),
        "SPOTKIT_REGION": _match("ControllerBootConfig.region", cfg.region, re.compile(r"[a-z0-9]+"),
                                 "must be an Azure region name"),
        "SPOTKIT_API_WORKERS": str(_port("ControllerBootConfig.api_workers", cfg.api_workers, 0, 64)),
        "SPOTKIT_MIN_RUNNING": str(_port("ControllerBootConfig.min_running", cfg.min_running, 0, len(slots))),
        "SPOTKIT_API_MODEL": _match("ControllerBootConfig.api_model", cfg.api_model, _MODEL,
                                    "must be a model or deployment name"),
        "SPOTKIT_MODEL": _match("ControllerBootConfig.model", cfg.model, _MODEL, "must be a model name"),
        **env,
        **_metered_env("ControllerBootConfig", cfg.azure_openai_endpoint, cfg.azure_openai_api_version),
    }
    if cfg.api_budget_usd is not None:
        if not (isinstance(cfg.api_budget_usd, int | float) and 0 <= cfg.api_budget_usd < 1e9):
            raise _fail("ControllerBootConfig.api_budget_usd", cfg.api_budget_usd, "must be 0 or more USD")
        env["SPOTKIT_API_BUDGET_USD"] = f"{cfg.api_budget_usd:g}"
    gateway_port = _port("ControllerBootConfig.gateway_port", cfg.gateway_port, 0, 65535)
    if gateway_port:
        env["SPOTKIT_GATEWAY_PORT"] = str(gateway_port)
    if cfg.gateway_tls_certificate:
        if not gateway_port:
            raise _fail("ControllerBootConfig.gateway_tls_certificate", cfg.gateway_tls_certificate,
                        "needs gateway_port")
        env["SPOTKIT_GATEWAY_TLS_SECRET"] = _match("ControllerBootConfig.gateway_tls_certificate",
                                                   cfg.gateway_tls_certificate, _KV_OBJECT,
                                                   "must be a Key Vault certificate name", 127)
        # One PEM, the private key and the chain, as Key Vault returns a PEM certificate's secret.
        env["SPOTKIT_GATEWAY_TLS_CERT"] = env["SPOTKIT_GATEWAY_TLS_KEY"] = GATEWAY_TLS_FILE
    text = _render("controller/cloud-config.yaml", {
        "controller_env": _block(_env_file(env)),
        "controller_unit": _block(_render("controller/spotkit-controller.service", {})),
        "gateway_unit": _block(_render("controller/spotkit-gateway.service", {})),
        "gateway_runcmd": "  - [systemctl, enable, --now, spotkit-gateway.service]" if gateway_port else "",
        "pip_spec": json.dumps(cfg.spotkit_pip_spec),
    })
    return _finish(text)


def _slot_sizes(cfg: ControllerBootConfig, slots: tuple[str, ...]) -> tuple[str, ...]:
    sizes = tuple(cfg.slot_vm_sizes) if isinstance(cfg.slot_vm_sizes, tuple | list) else ()
    for size in sizes:
        _match("ControllerBootConfig.slot_vm_sizes", size, _NAME, "must be a VM size", 64)
    if len(sizes) != len(slots):
        raise _fail("ControllerBootConfig.slot_vm_sizes", cfg.slot_vm_sizes, "must give one size per slot VM")
    return sizes


def encode_custom_data(text: str) -> str:
    """Base64 for the VM's ``customData``; raises `ValueError` past Azure's 65,535 decoded bytes."""
    raw = text.encode("utf-8")
    if len(raw) > MAX_CUSTOM_DATA_BYTES:
        raise ValueError(f"custom data is {len(raw):,} bytes decoded; Azure accepts at most "
                         f"{MAX_CUSTOM_DATA_BYTES:,} (shrink the cloud-config or move files out of it)")
    return base64.b64encode(raw).decode("ascii")
