"""The gateway's front: a Standard load balancer in front of `spotkit serve` on the controller VM.

Internal by default: its frontend is a private address on the controller subnet, so applications reach
the gateway from the VNet, a peered network or a VPN, and nothing on the internet can. Public only
with the stack's explicit opt-in (``gatewayPublic``, which also needs TLS and the networks allowed):
then the frontend is a static public IP and the controller subnet's NSG admits those networks on the
gateway's port alone. The tags say which, for the policy pack (``spotkit-public-gateway``,
``spotkit-gateway-tls``), which refuses a public frontend that lacks the opt-in.

A load balancer rather than the VM's own address: it is the stable name applications are given, it
health-checks the service (`/healthz`), and more gateway instances join its pool without a change on
the applications' side. Cost (eastus, 2026): a Standard load balancer's first five rules ≈ $18/month,
plus ≈ $3.6/month for the public IP when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

from infra.gateway_config import GatewayConfig

POOL, FRONTEND, PROBE = "gateway", "gateway", "gateway-healthz"


@dataclass
class GatewayArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str]
    name_prefix: str
    subscription_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]  # the controller subnet: where the internal frontend's address comes from
    config: GatewayConfig


def gateway_tags(tags: dict[str, str], cfg: GatewayConfig) -> dict[str, str]:
    """The gateway's resources' tags: the role, and the two facts the policy pack checks."""
    return {**tags, "spotkit-role": "gateway", "spotkit-public-gateway": str(cfg.public).lower(),
            "spotkit-gateway-tls": str(bool(cfg.tls_certificate)).lower()}


class Gateway(pulumi.ComponentResource):
    backend_pool_id: pulumi.Output[str]
    address: pulumi.Output[str]  # what applications call: the frontend's private or public address

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotkit:infra:Gateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg, rg, tags = args.config, args.resource_group_name, gateway_tags(args.tags, args.config)
        lb_name = f"{args.name_prefix}-gateway-lb"
        lb_id = pulumi.Output.concat("/subscriptions/", args.subscription_id, "/resourceGroups/", rg,
                                     "/providers/Microsoft.Network/loadBalancers/", lb_name)

        def part(kind: str, part_name: str) -> network.SubResourceArgs:
            return network.SubResourceArgs(id=pulumi.Output.concat(lb_id, f"/{kind}/{part_name}"))

        public_ip = network.PublicIPAddress(
            f"{name}-ip", resource_group_name=rg, location=args.location, tags=tags, opts=child,
            sku=network.PublicIPAddressSkuArgs(name="Standard"),
            public_ip_allocation_method="Static") if cfg.public else None
        frontend = network.FrontendIPConfigurationArgs(
            name=FRONTEND, public_ip_address=network.PublicIPAddressArgs(id=public_ip.id) if public_ip else None,
            subnet=None if public_ip else network.SubnetArgs(id=args.subnet_id),
            private_ip_allocation_method=None if public_ip else "Dynamic")
        lb = network.LoadBalancer(
            name, load_balancer_name=lb_name, resource_group_name=rg, location=args.location, tags=tags, opts=child,
            sku=network.LoadBalancerSkuArgs(name="Standard", tier="Regional"),
            frontend_ip_configurations=[frontend],
            backend_address_pools=[network.BackendAddressPoolArgs(name=POOL)],
            probes=[network.ProbeArgs(
                name=PROBE, protocol="Https" if cfg.tls_certificate else "Http", port=cfg.port,
                request_path="/healthz", interval_in_seconds=5, number_of_probes=2)],
            load_balancing_rules=[network.LoadBalancingRuleArgs(
                name="gateway", protocol="Tcp", frontend_port=cfg.frontend_port, backend_port=cfg.port,
                frontend_ip_configuration=part("frontendIPConfigurations", FRONTEND),
                backend_address_pool=part("backendAddressPools", POOL), probe=part("probes", PROBE),
                enable_tcp_reset=True, idle_timeout_in_minutes=30, disable_outbound_snat=True)])
        self.backend_pool_id = lb.id.apply(lambda i: f"{i}/backendAddressPools/{POOL}")
        if public_ip is not None:
            self.address = public_ip.ip_address.apply(lambda ip: str(ip or ""))
        else:
            self.address = lb.frontend_ip_configurations.apply(
                lambda f: str((f[0].private_ip_address if f else None) or ""))
        self.register_outputs({"backend_pool_id": self.backend_pool_id, "address": self.address})
