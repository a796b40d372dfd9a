"""Run the Pulumi program under `pulumi.runtime.set_mocks` (no CLI, no cloud) and capture every
resource it declares, with its inputs as the engine would see them (camelCase)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pulumi

SUBSCRIPTION = "00000000-0000-0000-0000-00000000beef"
TENANT = "00000000-0000-0000-0000-00000000cafe"
_EXPLICIT_NAMES = ("vmName", "accountName", "queueName", "containerName", "secretName", "vaultName",
                   "networkInterfaceName", "diskName", "managementPolicyName", "vmExtensionName")


def client_id(identity_name: str) -> str:
    """The (GUID) client id the mocks give a user-assigned identity."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"spotkit-mock/{identity_name}"))


@dataclass
class Captured:
    type: str
    name: str
    props: dict[str, Any]


@dataclass
class CapturingMocks(pulumi.runtime.Mocks):
    resources: list[Captured] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        props = dict(args.inputs)
        self.resources.append(Captured(args.typ, args.name, props))
        outputs = dict(props)
        outputs["name"] = next((props[k] for k in _EXPLICIT_NAMES if props.get(k)), args.name.replace("-", ""))
        resource_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/{args.typ}/{args.name}"
        outputs["id"] = resource_id
        if args.typ == "azure-native:managedidentity:UserAssignedIdentity":
            outputs["principalId"] = f"principal-{args.name}"
            outputs["clientId"] = client_id(args.name)
        identity = outputs.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # Azure answers the list of identity ids it was given as a map id -> details.
            outputs["identity"] = {**identity, "userAssignedIdentities": {
                i: {"clientId": client_id(i), "principalId": f"principal-{i}"}
                for i in identity["userAssignedIdentities"]}}
        if args.typ == "azure-native:network:PublicIPAddress":
            outputs["ipAddress"] = "198.51.100.10"
        if args.typ == "azure-native:network:LoadBalancer":  # a subnet frontend gets a Dynamic private address
            outputs["frontendIPConfigurations"] = [
                {**f, "id": f"{resource_id}/frontendIPConfigurations/{f.get('name')}",
                 **({"privateIPAddress": "10.40.1.10"} if f.get("subnet") else {})}
                for f in props.get("frontendIPConfigurations", [])]
        if args.typ == "azure-native:network:NetworkInterface":  # Azure assigns a Dynamic address: one per NIC
            nics = len([r for r in self.resources if r.type == args.typ])
            outputs["ipConfigurations"] = [{**config, "privateIPAddress": f"10.0.{nics}.4"}
                                           for config in props.get("ipConfigurations", [])]
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        if args.token == "azure-native:authorization:getClientConfig":
            return {"subscriptionId": SUBSCRIPTION, "tenantId": TENANT, "clientId": "deployer", "objectId": "me"}, []
        return {}, []

    def of_type(self, suffix: str) -> list[Captured]:
        return [r for r in self.resources if r.type.endswith(suffix)]

    def triples(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(r.type, r.name, r.props) for r in self.resources]


def run_program(cfg: Any) -> tuple[CapturingMocks, dict[str, Any]]:
    """Declare the whole environment for *cfg* under mocks; returns the resources and the outputs."""
    from infra.program import build

    mocks = CapturingMocks()
    pulumi.runtime.set_mocks(mocks, project="spotkit", stack="dev", preview=False)
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[Any]:
        outputs = build(cfg)
        return pulumi.Output.all(**outputs).apply(resolved.update)

    program()
    return mocks, resolved
