"""Compose the components into one environment. `__main__.py` validates the stack config and calls
`build`; the tests call `build` under Pulumi mocks."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_azure_native import authorization, resources

from infra import names
from infra.components.gateway import Gateway, GatewayArgs
from infra.components.gpu_pool import GpuPool, GpuPoolArgs, slot_specs
from infra.components.hosts import Hosts, HostsArgs
from infra.components.identity import Identity, IdentityArgs
from infra.components.monitoring import Monitoring, MonitoringArgs, eviction_runbook
from infra.components.network import Network, NetworkArgs
from infra.components.secrets import Secrets, SecretsArgs
from infra.components.storage import Storage, StorageArgs
from infra.components.vm import ADMIN_USER
from infra.config import SECRET_KEYS, StackConfig
from infra.custom_data import (
    ControllerBootConfig,
    NodeBootConfig,
    encode_custom_data,
    render_controller_cloud_config,
    render_node_cloud_config,
)
from infra.gateway_config import GatewayConfig


def build(cfg: StackConfig) -> dict[str, Any]:
    """Declare every resource of one environment; returns the stack outputs."""
    prefix, tags, loc = cfg.name_prefix, cfg.tags, cfg.location
    client = authorization.get_client_config_output()
    group = resources.ResourceGroup(f"{prefix}-rg", location=loc, tags=tags)
    gw = cfg.gateway
    net = Network(f"{prefix}-net", NetworkArgs(group.name, loc, cfg.vnet_cidr, cfg.operator_cidr, tags,
                                               gw.allowed_cidrs, gw.port))
    fleet_subnets: list[pulumi.Input[str]] = [net.gpu_subnet_id, net.controller_subnet_id]
    store = Storage(f"{prefix}-store", StorageArgs(group.name, loc, tags, fleet_subnets, cfg.operator_cidr,
                                                   cfg.segment_retention_days, names.storage_account(prefix),
                                                   cfg.queue_shards, cfg.queue_pack))
    vault_secrets = {SECRET_KEYS[key]: value for key, value in cfg.secrets.items()}
    vault = Secrets(f"{prefix}-secrets", SecretsArgs(group.name, loc, tags, client.tenant_id, fleet_subnets,
                                                     cfg.operator_cidr, names.key_vault(prefix), vault_secrets))
    ids = Identity(f"{prefix}-id", IdentityArgs(group.name, group.id, loc, tags, client.subscription_id,
                                                store.account_id, vault.vault_id, cfg.azure_openai_resource_id))
    secret_names = tuple(vault.secret_names)

    def node_custom_data(vm_name: str) -> pulumi.Output[str]:
        return pulumi.Output.all(store.queue_url, store.store_url, ids.node_client_id, vault.vault_name).apply(
            lambda v: encode_custom_data(render_node_cloud_config(NodeBootConfig(
                node_name=vm_name, queue_url=v[0], store_url=v[1], identity_client_id=v[2], key_vault_name=v[3],
                spotkit_pip_spec=cfg.spotkit_pip_spec, model=cfg.models[0], prefetch_models=cfg.models[1:],
                secret_names=secret_names,
                translator=cfg.translator_provider, translator_model=cfg.translator_model,
                azure_openai_endpoint=cfg.azure_openai_endpoint,
                azure_openai_api_version=cfg.azure_openai_api_version, runbook_base_url=cfg.runbook_base_url))))

    pool = GpuPool(f"{prefix}-gpu", GpuPoolArgs(
        group.name, loc, tags, prefix, cfg.slot_count, cfg.vm_size, cfg.fallback_sizes, cfg.spot_price_cap_per_hour,
        cfg.data_disk_size_gb,
        cfg.data_disk_sku, net.gpu_subnet_id, ids.node_identity_id, cfg.admin_ssh_public_key, node_custom_data))
    specs = slot_specs(prefix, cfg.slot_count, cfg.vm_size, cfg.fallback_sizes)
    controller_data = pulumi.Output.all(
        store.queue_url, store.store_url, ids.controller_client_id, vault.vault_name, client.subscription_id,
        group.name).apply(lambda v: encode_custom_data(render_controller_cloud_config(ControllerBootConfig(
            queue_url=v[0], store_url=v[1], identity_client_id=v[2], key_vault_name=v[3],
            spotkit_pip_spec=cfg.spotkit_pip_spec, subscription_id=v[4], resource_group=v[5],
            slot_vm_names=tuple(name for name, _ in specs), slot_vm_sizes=tuple(size for _, size in specs),
            secret_names=secret_names,
            vm_size=cfg.vm_size, region=cfg.location, api_workers=cfg.api_workers, api_budget_usd=cfg.api_budget_usd,
            api_model=cfg.api_model, model=cfg.models[0], min_running=cfg.min_running,
            azure_openai_endpoint=cfg.azure_openai_endpoint,
            azure_openai_api_version=cfg.azure_openai_api_version, runbook_base_url=cfg.runbook_base_url,
            gateway_port=gw.port, gateway_tls_certificate=gw.tls_certificate))))
    front = Gateway(f"{prefix}-gateway", GatewayArgs(group.name, loc, tags, prefix, client.subscription_id,
                                                      net.controller_subnet_id, gw)) if gw.port else None
    hosts = Hosts(f"{prefix}-hosts", HostsArgs(
        group.name, loc, tags, prefix, net.controller_subnet_id, net.jump_subnet_id, ids.controller_identity_id,
        controller_data, cfg.admin_ssh_public_key, front.backend_pool_id if front else None))
    alerts = Monitoring(f"{prefix}-monitoring", MonitoringArgs(
        group.name, group.id, tags, cfg.alert_emails, cfg.secrets.get("alertWebhook"),
        eviction_runbook(cfg.runbook_base_url)))
    return {
        "resource_group": group.name,
        "queue_url": store.queue_url,
        "store_url": store.store_url,
        "slot_vm_ids": pool.vm_ids,
        "slot_vm_names": pool.vm_names,
        # NAME:SIZE,… as `--slots` and SPOTKIT_SLOT_VMS take it (e.g. `spotkit doctor` run by the operator).
        "slot_vms": ",".join(f"{name}:{size}" for name, size in specs),
        "node_identity_id": ids.node_identity_id,
        "controller_identity_id": ids.controller_identity_id,
        "key_vault_name": vault.vault_name,
        "action_group_id": alerts.action_group_id,
        "alert_id": alerts.alert_id,
        "controller_vm_id": hosts.controller_vm_id,
        "jump_host_ip": hosts.jump_public_ip,
        # `spotkit node ssh|exec` read these two (SPOTKIT_SLOT_ADDRESSES, SPOTKIT_JUMP_HOST).
        "slot_addresses": pool.slot_addresses,
        "jump_host": hosts.jump_public_ip.apply(lambda ip: f"{ADMIN_USER}@{ip}:22"),
        # What applications set as OPENAI_BASE_URL ("" without a gateway); https takes the certificate's name.
        "gateway_url": front.address.apply(lambda a: gateway_url(gw, a)) if front else "",
    }


def gateway_url(gw: GatewayConfig, address: str) -> str:
    scheme = "https" if gw.tls_certificate else "http"
    port = "" if gw.frontend_port == 443 and gw.tls_certificate else f":{gw.frontend_port}"
    return f"{scheme}://{address}{port}/v1"
