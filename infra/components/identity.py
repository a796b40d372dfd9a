"""Identity: one user-assigned identity for GPU nodes, one for the cost controller, each with only
the roles its job needs, scoped as narrowly as Azure allows.

| identity   | role                                 | scope           |
| ---------- | ------------------------------------ | --------------- |
| nodes      | Storage Queue Data Message Processor | storage account |
| nodes      | Storage Queue Data Message Sender    | storage account |
| nodes      | Storage Blob Data Contributor        | storage account |
| nodes      | Key Vault Secrets User               | key vault       |
| controller | Virtual Machine Contributor          | resource group  |
| controller | Storage Queue Data Reader            | storage account |
| controller | Storage Blob Data Contributor        | storage account |
| controller | Key Vault Secrets User               | key vault       |
| both       | Cognitive Services OpenAI User       | the Azure OpenAI resource (only when one is configured) |

"Cognitive Services OpenAI User" lets an identity call deployments (inference) and nothing else: it
cannot read keys, create deployments or change the resource.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, managedidentity

ROLES = {
    "queue-processor": "8a0f0c08-91a1-4084-bc3d-661d67233fed",  # Storage Queue Data Message Processor
    "queue-sender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",  # Storage Queue Data Message Sender
    "queue-reader": "19e7f393-937e-4f77-808e-94535e297925",  # Storage Queue Data Reader
    "blob-contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",  # Storage Blob Data Contributor
    "vm-contributor": "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",  # Virtual Machine Contributor
    "kv-secrets-user": "4633458b-17de-408a-b874-0445c86b69e6",  # Key Vault Secrets User
    "openai-user": "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",  # Cognitive Services OpenAI User
}


@dataclass
class IdentityArgs:
    resource_group_name: pulumi.Input[str]
    resource_group_id: pulumi.Input[str]
    location: str
    tags: dict[str, str]
    subscription_id: pulumi.Input[str]
    storage_account_id: pulumi.Input[str]
    key_vault_id: pulumi.Input[str]
    azure_openai_resource_id: str = ""  # the metered API's resource, when it is Azure OpenAI


class Identity(pulumi.ComponentResource):
    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotkit:infra:Identity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        nodes = managedidentity.UserAssignedIdentity(
            f"{name}-nodes", resource_group_name=args.resource_group_name, location=args.location,
            tags=args.tags, opts=child)
        controller = managedidentity.UserAssignedIdentity(
            f"{name}-controller", resource_group_name=args.resource_group_name, location=args.location,
            tags=args.tags, opts=child)

        def grant(who: str, principal: managedidentity.UserAssignedIdentity, role: str,
                  scope: pulumi.Input[str]) -> authorization.RoleAssignment:
            definition = pulumi.Output.concat(
                "/subscriptions/", args.subscription_id, "/providers/Microsoft.Authorization/roleDefinitions/",
                ROLES[role])
            return authorization.RoleAssignment(
                f"{name}-{who}-{role}", principal_id=principal.principal_id, principal_type="ServicePrincipal",
                role_definition_id=definition, scope=scope, opts=child)

        self.assignments = [
            grant("nodes", nodes, "queue-processor", args.storage_account_id),
            grant("nodes", nodes, "queue-sender", args.storage_account_id),
            grant("nodes", nodes, "blob-contributor", args.storage_account_id),
            grant("nodes", nodes, "kv-secrets-user", args.key_vault_id),
            grant("controller", controller, "vm-contributor", args.resource_group_id),
            grant("controller", controller, "queue-reader", args.storage_account_id),
            grant("controller", controller, "blob-contributor", args.storage_account_id),
            # fetch-secrets (alert webhook, API keys) and the gateway's TLS certificate, at boot.
            grant("controller", controller, "kv-secrets-user", args.key_vault_id),
        ]
        if args.azure_openai_resource_id:
            self.assignments += [grant(who, principal, "openai-user", args.azure_openai_resource_id)
                                 for who, principal in (("nodes", nodes), ("controller", controller))]
        self.node_identity_id, self.node_client_id = nodes.id, nodes.client_id
        self.controller_identity_id, self.controller_client_id = controller.id, controller.client_id
        self.register_outputs({"node_identity_id": nodes.id, "controller_identity_id": controller.id})
