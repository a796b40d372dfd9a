"""The two small regular VMs: the controller host, where ``spotkit controller`` runs with its own
identity and no public address, and the jump host, the only way in for SSH (from `operatorCidr`).

Costs (pay-as-you-go, eastus, 2026): controller Standard_B2s ≈ $30/month, jump host Standard_B1s
≈ $8/month plus a Standard public IP ≈ $3.6/month. Deallocate the jump host when nobody needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

from infra.components.vm import VmSpec, make_vm

CONTROLLER_SIZE = "Standard_B2s"
JUMP_SIZE = "Standard_B1s"


@dataclass
class HostsArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str]
    name_prefix: str
    controller_subnet_id: pulumi.Input[str]
    jump_subnet_id: pulumi.Input[str]
    controller_identity_id: pulumi.Input[str]
    controller_custom_data: pulumi.Input[str]
    admin_ssh_public_key: str
    gateway_pool_id: pulumi.Input[str] | None = None  # the gateway load balancer's pool, when there is one


class Hosts(pulumi.ComponentResource):
    def __init__(self, name: str, args: HostsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotkit:infra:Hosts", name, None, opts)
        rg, loc = args.resource_group_name, args.location
        controller = make_vm(f"{name}-controller", VmSpec(
            vm_name=f"{args.name_prefix}-controller", size=CONTROLLER_SIZE, subnet_id=args.controller_subnet_id,
            admin_ssh_public_key=args.admin_ssh_public_key, tags=args.tags, role="controller",
            custom_data=args.controller_custom_data, identity_id=args.controller_identity_id,
            backend_pool_id=args.gateway_pool_id), rg, loc, self).vm
        jump_ip = network.PublicIPAddress(
            f"{name}-jump-ip", resource_group_name=rg, location=loc, tags={**args.tags, "spotkit-role": "jump-host"},
            sku=network.PublicIPAddressSkuArgs(name="Standard"), public_ip_allocation_method="Static",
            opts=pulumi.ResourceOptions(parent=self))
        jump = make_vm(f"{name}-jump", VmSpec(
            vm_name=f"{args.name_prefix}-jump", size=JUMP_SIZE, subnet_id=args.jump_subnet_id,
            admin_ssh_public_key=args.admin_ssh_public_key, tags=args.tags, role="jump-host",
            public_ip_id=jump_ip.id), rg, loc, self).vm
        self.controller_vm_id, self.jump_vm_id = controller.id, jump.id
        self.jump_public_ip = jump_ip.ip_address
        self.register_outputs({"controller_vm_id": controller.id, "jump_public_ip": jump_ip.ip_address})
