"""Network: a VNet with three subnets, NSGs that deny the internet, NAT for egress, no public IPs
on nodes. SSH reaches nodes only through the jump host's subnet, which accepts SSH only from the
operator's network (`operatorCidr`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

SERVICE_ENDPOINTS = ("Microsoft.Storage", "Microsoft.KeyVault")


@dataclass
class NetworkArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    cidr: str
    operator_cidr: str
    tags: dict[str, str]
    # A public gateway's callers: allowed on its port into the controller subnet (nothing else is).
    gateway_callers: tuple[str, ...] = ()
    gateway_port: int = 0


def _rule(name: str, priority: int, access: str, source: str, port: str = "*",
          protocol: str = "*") -> network.SecurityRuleArgs:
    return network.SecurityRuleArgs(
        name=name, priority=priority, direction="Inbound", access=access, protocol=protocol,
        source_address_prefix=source, source_port_range="*", destination_address_prefix="*",
        destination_port_range=port)


class Network(pulumi.ComponentResource):
    gpu_subnet_id: pulumi.Output[str]
    controller_subnet_id: pulumi.Output[str]
    jump_subnet_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotkit:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        gpu_cidr, controller_cidr, jump_cidr = (str(s) for s in list(
            ipaddress.ip_network(args.cidr).subnets(new_prefix=24))[:3])
        rg, loc, tags = args.resource_group_name, args.location, args.tags

        def private_nsg(label: str, extra: list[network.SecurityRuleArgs]) -> network.NetworkSecurityGroup:
            # Tagged as the public gateway's opt-in when it admits callers (the policy pack checks it).
            opted = {"spotkit-public-gateway": "true"} if extra else {}
            return network.NetworkSecurityGroup(
                f"{name}-{label}-nsg", resource_group_name=rg, location=loc, tags={**tags, **opted}, opts=child,
                security_rules=[_rule("ssh-from-jump-subnet", 100, "Allow", jump_cidr, "22", "Tcp"), *extra,
                                _rule("deny-internet-inbound", 4000, "Deny", "Internet")])

        callers = [_rule(f"gateway-from-caller-{i + 1}", 200 + i, "Allow", cidr, str(args.gateway_port), "Tcp")
                   for i, cidr in enumerate(args.gateway_callers)]
        gpu_nsg, controller_nsg = private_nsg("gpu", []), private_nsg("controller", callers)
        jump_nsg = network.NetworkSecurityGroup(
            f"{name}-jump-nsg", resource_group_name=rg, location=loc, tags=tags, opts=child,
            security_rules=[_rule("ssh-from-operator", 100, "Allow", args.operator_cidr, "22", "Tcp"),
                            _rule("deny-internet-inbound", 4000, "Deny", "Internet")])
        nat_ip = network.PublicIPAddress(
            f"{name}-nat-ip", resource_group_name=rg, location=loc, tags=tags, opts=child,
            sku=network.PublicIPAddressSkuArgs(name="Standard"), public_ip_allocation_method="Static")
        nat = network.NatGateway(
            f"{name}-nat", resource_group_name=rg, location=loc, tags=tags, opts=child,
            sku=network.NatGatewaySkuArgs(name="Standard"),
            public_ip_addresses=[network.SubResourceArgs(id=nat_ip.id)])
        vnet = network.VirtualNetwork(
            f"{name}-vnet", resource_group_name=rg, location=loc, tags=tags,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.cidr]),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]))

        def subnet(label: str, cidr: str, nsg: network.NetworkSecurityGroup, egress: bool) -> network.Subnet:
            return network.Subnet(
                f"{name}-{label}", resource_group_name=rg, virtual_network_name=vnet.name, address_prefix=cidr,
                network_security_group=network.NetworkSecurityGroupArgs(id=nsg.id),
                nat_gateway=network.SubResourceArgs(id=nat.id) if egress else None,
                default_outbound_access=False,
                service_endpoints=[network.ServiceEndpointPropertiesFormatArgs(service=s) for s in SERVICE_ENDPOINTS],
                opts=child)

        gpu = subnet("gpu", gpu_cidr, gpu_nsg, egress=True)
        controller = subnet("controller", controller_cidr, controller_nsg, egress=True)
        jump = subnet("jump", jump_cidr, jump_nsg, egress=False)
        self.gpu_subnet_id, self.controller_subnet_id, self.jump_subnet_id = gpu.id, controller.id, jump.id
        self.vnet_id = vnet.id
        self.register_outputs({"gpu_subnet_id": gpu.id, "controller_subnet_id": controller.id,
                               "jump_subnet_id": jump.id, "vnet_id": vnet.id})
