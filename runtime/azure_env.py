"""Where this process runs, as far as Azure is concerned, and the one credential it uses.

`credential` is `DefaultAzureCredential` narrowed to the sources that can exist on this machine —
a managed identity only on an Azure VM (or where the platform says so), a service principal or
workload identity only when their variables are set, the Azure CLI only when ``az`` is installed.
A laptop with none of them is told so in one line at once, instead of ~90 s of metadata-service
timeouts and sixty lines of azure-identity warnings.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError

AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"  # what every Azure VM reports in DMI


def on_azure(dmi: Path = Path("/sys/class/dmi/id/chassis_asset_tag")) -> bool:
    try:
        return dmi.read_text().strip() == AZURE_ASSET_TAG
    except OSError:
        return False


def credential(env: Mapping[str, str] | None = None, azure: bool | None = None) -> Any:
    """An azure-identity credential for this machine, or `ConfigError` naming the ways to get one."""
    env = os.environ if env is None else env
    azure = on_azure() if azure is None else azure
    has_service_principal = bool(env.get("AZURE_CLIENT_ID") and env.get("AZURE_TENANT_ID")
                                 and (env.get("AZURE_CLIENT_SECRET") or env.get("AZURE_CLIENT_CERTIFICATE_PATH")))
    has_workload = bool(env.get("AZURE_FEDERATED_TOKEN_FILE"))
    has_managed = azure or bool(env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"))
    has_cli = shutil.which("az") is not None
    if not (has_service_principal or has_workload or has_managed or has_cli):
        raise ConfigError("no Azure credential on this machine: set AZURE_STORAGE_CONNECTION_STRING (e.g. for "
                          "Azurite), run on an Azure VM with its managed identity, set a service principal "
                          "(AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET), or `az login`")
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(
        exclude_environment_credential=not has_service_principal,
        exclude_workload_identity_credential=not has_workload,
        exclude_managed_identity_credential=not has_managed,
        exclude_cli_credential=not has_cli,
        exclude_shared_token_cache_credential=True, exclude_visual_studio_code_credential=True,
        exclude_powershell_credential=True, exclude_developer_cli_credential=True,
        exclude_interactive_browser_credential=True,
        managed_identity_client_id=env.get("AZURE_CLIENT_ID") or None, process_timeout=10)
