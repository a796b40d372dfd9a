"""The gateway's stack keys: where `spotkit serve` listens, the Key Vault certificate it serves TLS with,
and the one explicit opt-in that gives it a public address (docs/gateway.md, "In the stack").

Private is the default: an internal load balancer on the controller subnet, reached from the VNet, a
peered network or a VPN. A public endpoint needs all three of ``gatewayPublic: true``, a TLS certificate
and the networks allowed to call it; the policy pack checks the deployed load balancer again."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NAMESPACE = "spotkit"
_CERTIFICATE = re.compile(r"^[0-9A-Za-z-]{1,127}$")  # a Key Vault object name
TLS_PORT = 443


class GatewayConfigError(ValueError):
    """One bad gateway key, named, with the fix (raised as the stack's config error)."""


@dataclass(frozen=True)
class GatewayConfig:
    port: int = 0  # > 0: `spotkit serve` on the controller VM on this port, behind the load balancer
    tls_certificate: str = ""  # a certificate in the stack's Key Vault; "": plain HTTP inside the VNet
    public: bool = False
    allowed_cidrs: tuple[str, ...] = ()  # who may call a public endpoint

    @property
    def frontend_port(self) -> int:
        """What applications call: 443 with TLS, else the service's own port."""
        return TLS_PORT if self.tls_certificate else self.port


def _fix(key: str, example: str) -> str:
    return f"(pulumi config set {NAMESPACE}:{key} {example})"


def strict_bool(key: str, value: Any) -> bool:
    """true or false, as YAML or text; anything else (yes, 1, ture) is a typo, refused."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise GatewayConfigError(f"{NAMESPACE}:{key} = {value!r} is not true or false {_fix(key, 'true')}")


def parse_gateway(raw: Mapping[str, Any], port: int) -> GatewayConfig:
    """The gateway keys of *raw*, given the already validated ``gatewayPort``."""
    cert = str(raw.get("gatewayTlsCertificate") or "").strip()
    public = strict_bool("gatewayPublic", raw.get("gatewayPublic", False))
    value = raw.get("gatewayAllowedCidrs") or []
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise GatewayConfigError(f"{NAMESPACE}:gatewayAllowedCidrs must be a list of CIDRs "
                                 f"{_fix('gatewayAllowedCidrs', '203.0.113.0/24')}")
    cidrs = []
    for item in (str(i).strip() for i in items if str(i).strip()):
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise GatewayConfigError(f"{NAMESPACE}:gatewayAllowedCidrs has {item!r}, not a CIDR "
                                     f"{_fix('gatewayAllowedCidrs', '203.0.113.0/24')}") from None
        if network.prefixlen < 8:
            raise GatewayConfigError(f"{NAMESPACE}:gatewayAllowedCidrs has {item}, too much of the internet: name "
                                     f"the networks your applications call from "
                                     f"{_fix('gatewayAllowedCidrs', '203.0.113.0/24')}")
        cidrs.append(str(network))
    if cert and not _CERTIFICATE.match(cert):
        raise GatewayConfigError(f"{NAMESPACE}:gatewayTlsCertificate = {cert!r} is not a Key Vault certificate name "
                                 f"(letters, digits, '-') {_fix('gatewayTlsCertificate', 'gateway-tls')}")
    for key, set_ in (("gatewayTlsCertificate", bool(cert)), ("gatewayPublic", public),
                      ("gatewayAllowedCidrs", bool(cidrs))):
        if set_ and not port:
            raise GatewayConfigError(f"{NAMESPACE}:{key} needs the gateway: set {NAMESPACE}:gatewayPort "
                                     f"{_fix('gatewayPort', '8080')}")
    if public and not cert:
        raise GatewayConfigError(f"{NAMESPACE}:gatewayPublic = true needs TLS: import a certificate into the "
                                 f"stack's Key Vault and name it {_fix('gatewayTlsCertificate', 'gateway-tls')}")
    if public and not cidrs:
        raise GatewayConfigError(f"{NAMESPACE}:gatewayPublic = true needs the networks allowed to call it "
                                 f"{_fix('gatewayAllowedCidrs', '203.0.113.0/24')}")
    if cidrs and not public:
        raise GatewayConfigError(f"{NAMESPACE}:gatewayAllowedCidrs is for a public gateway; inside the VNet every "
                                 f"network that reaches it may call (with a key) {_fix('gatewayPublic', 'true')}")
    return GatewayConfig(port, cert, public, tuple(cidrs))
