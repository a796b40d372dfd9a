"""Guardrail checks over resource properties, importable without starting a policy server.

Each validator takes the resource type token and its properties (camelCase, as Pulumi's policy SDK
and its mocks present them) plus the pack's config, and returns human-readable violations —
empty when the resource is fine. `infra/guardrails/__main__.py` wraps them in a CrossGuard pack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any

VM = "azure-native:compute:VirtualMachine"
NIC = "azure-native:network:NetworkInterface"
NSG = "azure-native:network:NetworkSecurityGroup"
RULE = "azure-native:network:SecurityRule"
LOAD_BALANCER = "azure-native:network:LoadBalancer"
STORAGE = "azure-native:storage:StorageAccount"
CONTAINER = "azure-native:storage:BlobContainer"
GPU_SIZE_PREFIXES = ("Standard_NC", "Standard_ND", "Standard_NV")
INTERNET = {"*", "internet", "0.0.0.0/0", "any", "::/0"}
TAGGABLE = {VM, NIC, NSG, STORAGE, "azure-native:compute:Disk", "azure-native:network:VirtualNetwork",
            "azure-native:network:PublicIPAddress", "azure-native:network:NatGateway", LOAD_BALANCER,
            "azure-native:keyvault:Vault", "azure-native:managedidentity:UserAssignedIdentity",
            "azure-native:resources:ResourceGroup", "azure-native:monitor:ActionGroup",
            "azure-native:monitor:ActivityLogAlert"}


@dataclass(frozen=True)
class GuardrailConfig:
    max_price_cap: float = 0.60  # USD/hour; a T4 NC4as is $0.526 pay-as-you-go (eastus, 2026)
    allow_pay_as_you_go_cap: bool = True  # maxPrice -1 = never more than pay-as-you-go
    required_tags: tuple[str, ...] = ("environment", "cost-center")
    allow_regular_tag: str = "spotkit-allow-regular"  # tag value "true" lets a GPU VM be regular priority


Props = Mapping[str, Any]
Validator = Callable[[str, Props, GuardrailConfig], list[str]]


def _is_gpu_vm(kind: str, props: Props) -> bool:
    size = str((props.get("hardwareProfile") or {}).get("vmSize", ""))
    return kind == VM and size.startswith(GPU_SIZE_PREFIXES)


def gpu_vms_are_spot(kind: str, props: Props, cfg: GuardrailConfig) -> list[str]:
    if not _is_gpu_vm(kind, props):
        return []
    allowed = str((props.get("tags") or {}).get(cfg.allow_regular_tag, "")).lower() == "true"
    if props.get("priority") != "Spot" and not allowed:
        return [f"GPU VM has priority {props.get('priority') or 'Regular'!r}; spotkit runs GPUs as Spot "
                f"(set priority Spot, or tag {cfg.allow_regular_tag}=true to allow a regular VM on purpose)"]
    return []


def spot_price_capped(kind: str, props: Props, cfg: GuardrailConfig) -> list[str]:
    if kind != VM or props.get("priority") != "Spot":
        return []
    price = (props.get("billingProfile") or {}).get("maxPrice")
    if price is None:
        return ["spot VM has no billingProfile.maxPrice; set one (or -1 for the pay-as-you-go cap)"]
    price = float(price)
    if price == -1:
        return [] if cfg.allow_pay_as_you_go_cap else ["spot maxPrice -1 (pay-as-you-go) is not allowed here; "
                                                        f"set a price at most {cfg.max_price_cap} USD/h"]
    if price <= 0 or price > cfg.max_price_cap:
        return [f"spot maxPrice {price} USD/h is outside (0, {cfg.max_price_cap}]; lower it in "
                "spotkit:maxPricePerHour"]
    return []


def no_public_ip_on_gpu_nodes(kind: str, props: Props, cfg: GuardrailConfig) -> list[str]:
    violations = []
    if kind == NIC and (props.get("tags") or {}).get("spotkit-role") == "gpu-node":
        for config in props.get("ipConfigurations") or []:
            if config.get("publicIPAddress"):
                violations.append("GPU node NIC has a public IP; nodes are reached through the jump host only")
    if _is_gpu_vm(kind, props):
        for config in (props.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []:
            for ip in config.get("ipConfigurations") or []:
                if ip.get("publicIPAddressConfiguration"):
                    violations.append("GPU VM requests a public IP configuration; remove it")
    return violations


def _rules(kind: str, props: Props) -> list[Props]:
    if kind == NSG:
        return list(props.get("securityRules") or [])
    if kind == RULE:
        return [props]
    return []


def no_inbound_from_internet(kind: str, props: Props, cfg: GuardrailConfig) -> list[str]:
    violations = []
    for rule in _rules(kind, props):
        if str(rule.get("direction", "")).lower() != "inbound" or str(rule.get("access", "")).lower() != "allow":
            continue
        sources = [rule.get("sourceAddressPrefix"), *(rule.get("sourceAddressPrefixes") or [])]
        if any(str(s).strip().lower() in INTERNET for s in sources if s is not None):
            violations.append(f"NSG rule {rule.get('name', '?')!r} allows inbound traffic from the internet "
                              f"(source {rule.get('sourceAddressPrefix')!r}); allow the operator's range only")
    return violations


PUBLIC_GATEWAY_TAG = "spotkit-public-gateway"  # "true" only with the stack's gatewayPublic opt-in


# Address space that never routes on the internet; everything else counts as public (documentation
# ranges too, which Python's is_private calls private).
_INTERNAL = tuple(ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                                          "127.0.0.0/8", "169.254.0.0/16", "fc00::/7", "fe80::/10"))


def _public_source(prefix: object) -> bool:
    try:
        network = ip_network(str(prefix).strip(), strict=False)
    except ValueError:
        return False  # a service tag (VirtualNetwork, AzureLoadBalancer); "Internet" is no-inbound-from-internet's
    return not any(network.version == n.version and network.subnet_of(n) for n in _INTERNAL)  # type: ignore[arg-type]


def public_gateway_by_opt_in(kind: str, props: Props, cfg: GuardrailConfig) -> list[str]:
    """A public address in front of anything, or a public network let in on a port other than SSH's,
    only as the gateway's explicit opt-in — and a public gateway only over TLS."""
    tags = props.get("tags") or {}
    opted_in = str(tags.get(PUBLIC_GATEWAY_TAG, "")).lower() == "true"
    violations = []
    if kind == LOAD_BALANCER:
        public = [f for f in props.get("frontendIPConfigurations") or [] if f.get("publicIPAddress")]
        if public and not (opted_in and tags.get("spotkit-role") == "gateway"):
            violations.append("load balancer has a public frontend without the gateway's opt-in; keep it internal, "
                              "or set spotkit:gatewayPublic true (with TLS and spotkit:gatewayAllowedCidrs)")
        elif public:
            plain = [p.get("name", "?") for p in props.get("probes") or [] if str(p.get("protocol")) != "Https"]
            if str(tags.get("spotkit-gateway-tls", "")).lower() != "true" or plain:
                violations.append("public gateway without TLS (its health probes must be Https); set "
                                  "spotkit:gatewayTlsCertificate")
    for rule in _rules(kind, props):
        if str(rule.get("direction", "")).lower() != "inbound" or str(rule.get("access", "")).lower() != "allow":
            continue
        sources = [rule.get("sourceAddressPrefix"), *(rule.get("sourceAddressPrefixes") or [])]
        if str(rule.get("destinationPortRange")) != "22" and any(_public_source(s) for s in sources if s) \
                and not opted_in:
            violations.append(f"NSG rule {rule.get('name', '?')!r} admits a public network on port "
                              f"{rule.get('destinationPortRange')!r} without the gateway's opt-in "
                              "(spotkit:gatewayPublic true)")
    return violations


def storage_locked_down(kind: str, props: Props, cfg: GuardrailConfig) -> list[str]:
    violations = []
    if kind == STORAGE:
        if props.get("allowSharedKeyAccess") is not False:
            violations.append("storage account allows shared-key access; set allowSharedKeyAccess false "
                              "(identities only)")
        if props.get("minimumTlsVersion") not in ("TLS1_2", "TLS1_3"):
            violations.append(f"storage account minimum TLS is {props.get('minimumTlsVersion')!r}; use TLS1_2")
        if props.get("allowBlobPublicAccess") is not False:
            violations.append("storage account allows public blob access; set allowBlobPublicAccess false")
    if kind == CONTAINER and str(props.get("publicAccess") or "None") != "None":
        violations.append(f"blob container is public ({props.get('publicAccess')}); set publicAccess None")
    return violations


def data_disks_persistent(kind: str, props: Props, cfg: GuardrailConfig) -> list[str]:
    if not _is_gpu_vm(kind, props):
        return []
    disks = (props.get("storageProfile") or {}).get("dataDisks") or []
    if not disks:
        return ["GPU VM has no data disk; models and caches must live on a persistent disk"]
    return [f"data disk at LUN {d.get('lun')} has deleteOption {d.get('deleteOption')!r}; use Detach so it "
            "survives eviction and re-creation" for d in disks if d.get("deleteOption") != "Detach"]


def required_tags(kind: str, props: Props, cfg: GuardrailConfig) -> list[str]:
    if kind not in TAGGABLE:
        return []
    tags = props.get("tags") or {}
    missing = [t for t in cfg.required_tags if not str(tags.get(t, "")).strip()]
    return [f"missing required tags {missing} (set spotkit:tags)"] if missing else []


def encryption_at_host(kind: str, props: Props, cfg: GuardrailConfig) -> list[str]:
    if kind != VM:
        return []
    if (props.get("securityProfile") or {}).get("encryptionAtHost") is not True:
        return ["VM lacks encryption at host; set securityProfile.encryptionAtHost true"]
    return []


VALIDATORS: dict[str, tuple[str, Validator]] = {
    "gpu-vms-are-spot": ("GPU VMs must be Spot unless explicitly allowed", gpu_vms_are_spot),
    "spot-price-capped": ("Spot max price at most the configured cap", spot_price_capped),
    "no-public-ip-on-gpu-nodes": ("No public IP on GPU nodes", no_public_ip_on_gpu_nodes),
    "no-inbound-from-internet": ("No NSG rule allows inbound from the internet", no_inbound_from_internet),
    "public-gateway-by-opt-in": ("A public endpoint only as the gateway's opt-in, over TLS",
                                 public_gateway_by_opt_in),
    "storage-locked-down": ("Storage: no shared key, TLS >= 1.2, nothing public", storage_locked_down),
    "data-disks-persistent": ("GPU data disks survive eviction (deleteOption Detach)", data_disks_persistent),
    "required-tags": ("Resources carry environment and cost-center tags", required_tags),
    "encryption-at-host": ("VMs encrypt at host", encryption_at_host),
}


@dataclass
class Finding:
    policy: str
    resource: str
    message: str


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def by_policy(self, policy: str) -> list[Finding]:
        return [f for f in self.findings if f.policy == policy]


def check_all(resources: Sequence[tuple[str, str, Props]], cfg: GuardrailConfig | None = None) -> Report:
    """Run every validator over (type, name, props) triples, as `pulumi preview --policy-pack` would."""
    cfg = cfg or GuardrailConfig()
    report = Report()
    for kind, name, props in resources:
        for policy, (_, validator) in VALIDATORS.items():
            for message in validator(kind, props, cfg):
                report.findings.append(Finding(policy, name, message))
    return report
