"""Secrets: a Key Vault (RBAC, soft delete, reachable from the fleet's subnets and the operator's
network only) holding the stack's Pulumi secrets. Nodes read them at boot with their managed
identity; no secret value is ever part of a VM's custom data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import keyvault

from infra.components.storage import storage_ip_rule


@dataclass
class SecretsArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str]
    tenant_id: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    operator_cidr: str
    vault_name: str  # logical name of the Key Vault (`infra.names.key_vault`)
    secrets: dict[str, Any] = field(default_factory=dict)  # Key Vault secret name -> pulumi secret Output


class Secrets(pulumi.ComponentResource):
    def __init__(self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotkit:infra:Secrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vault = keyvault.Vault(
            args.vault_name, resource_group_name=args.resource_group_name, location=args.location, tags=args.tags,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id, sku=keyvault.SkuArgs(family="A", name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True, enable_soft_delete=True, soft_delete_retention_in_days=7,
                network_acls=keyvault.NetworkRuleSetArgs(
                    default_action=keyvault.NetworkRuleAction.DENY, bypass="AzureServices",
                    virtual_network_rules=[keyvault.VirtualNetworkRuleArgs(id=s) for s in args.subnet_ids],
                    ip_rules=[keyvault.IPRuleArgs(value=storage_ip_rule(args.operator_cidr))])),
            opts=child)
        self.secret_names = sorted(args.secrets)
        for secret_name in self.secret_names:
            keyvault.Secret(
                f"{name}-{secret_name}", resource_group_name=args.resource_group_name, vault_name=vault.name,
                secret_name=secret_name, properties=keyvault.SecretPropertiesArgs(value=args.secrets[secret_name]),
                opts=child)
        self.vault_id, self.vault_name = vault.id, vault.name
        self.register_outputs({"vault_id": vault.id, "vault_name": vault.name})
