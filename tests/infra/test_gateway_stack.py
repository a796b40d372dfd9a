"""The gateway in the stack, under mocks: an internal Standard load balancer in front of `spotkit serve`
on the controller VM; TLS from a Key Vault certificate; a public endpoint only as the explicit opt-in,
which the config demands whole and the policy pack checks on what is declared."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from infra.config import StackConfigError, parse_stack_config
from infra.guardrails.validators import check_all
from tests.infra.test_config import sample
from tests.infra.test_program import _variant, vms
from tests.support.pulumi_mocks import CapturingMocks, run_program

LB_PATH = "/providers/Microsoft.Network/loadBalancers/spotkit-dev-gateway-lb"
TLS = {"gatewayPort": 8443, "gatewayTlsCertificate": "gateway-tls"}
PUBLIC = {**TLS, "gatewayPublic": True, "gatewayAllowedCidrs": ["203.0.113.0/24", "198.51.100.7/32"]}


def stack(**change: Any) -> tuple[CapturingMocks, dict[str, Any]]:
    return run_program(parse_stack_config({**sample(), **change}))


def controller_env(mocks: CapturingMocks) -> str:
    [host] = vms(mocks, "controller")
    return base64.b64decode(host["osProfile"]["customData"]).decode()


def test_no_gateway_no_load_balancer() -> None:
    mocks, outputs = stack()
    assert mocks.of_type("network:LoadBalancer") == [] and outputs["gateway_url"] == ""


def test_an_internal_gateway_fronts_the_controller_on_the_vnet() -> None:
    mocks, outputs = stack(gatewayPort=8080)
    [lb] = mocks.of_type("network:LoadBalancer")
    props = lb.props
    assert props["sku"] == {"name": "Standard", "tier": "Regional"}
    [frontend] = props["frontendIPConfigurations"]
    assert "publicIPAddress" not in frontend and frontend["subnet"]["id"].endswith("controller")
    [probe] = props["probes"]
    assert (probe["protocol"], probe["port"], probe["requestPath"]) == ("Http", 8080, "/healthz")
    [rule] = props["loadBalancingRules"]
    assert (rule["frontendPort"], rule["backendPort"], rule["protocol"]) == (8080, 8080, "Tcp")
    parts = ((rule["frontendIPConfiguration"], "frontendIPConfigurations/gateway"),
             (rule["backendAddressPool"], "backendAddressPools/gateway"), (rule["probe"], "probes/gateway-healthz"))
    for ref, part in parts:
        assert ref["id"].endswith(f"{LB_PATH}/{part}")  # parts of this load balancer, by Azure's id
    nics = mocks.of_type("network:NetworkInterface")
    [nic] = [n for n in nics if n.props["tags"]["spotkit-role"] == "controller"]
    [pool] = nic.props["ipConfigurations"][0]["loadBalancerBackendAddressPools"]
    assert pool["id"].endswith("backendAddressPools/gateway")
    others = [n for n in nics if n.props["tags"]["spotkit-role"] != "controller"]
    assert not any("loadBalancerBackendAddressPools" in n.props["ipConfigurations"][0] for n in others)
    public_ips = mocks.of_type("network:PublicIPAddress")
    assert not [ip for ip in public_ips if ip.props["tags"].get("spotkit-role") == "gateway"]
    assert props["tags"]["spotkit-public-gateway"] == "false"
    assert outputs["gateway_url"] == "http://10.40.1.10:8080/v1"
    assert "SPOTKIT_GATEWAY_TLS_SECRET=" not in controller_env(mocks)
    assert check_all(mocks.triples()).findings == []


def test_tls_from_key_vault_serves_443_and_probes_https() -> None:
    mocks, outputs = stack(**TLS)
    [lb] = mocks.of_type("network:LoadBalancer")
    [rule], [probe] = lb.props["loadBalancingRules"], lb.props["probes"]
    assert (rule["frontendPort"], rule["backendPort"], probe["protocol"]) == (443, 8443, "Https")
    text = controller_env(mocks)
    for line in ("SPOTKIT_GATEWAY_TLS_SECRET=gateway-tls", "SPOTKIT_GATEWAY_TLS_CERT=/etc/spotkit/tls/gateway.pem",
                 "SPOTKIT_GATEWAY_TLS_KEY=/etc/spotkit/tls/gateway.pem"):
        assert line in text
    assert "/opt/spotkit/bin/fetch-tls" in text
    assert outputs["gateway_url"] == "https://10.40.1.10/v1"
    assert check_all(mocks.triples()).findings == []


def test_a_public_gateway_is_the_whole_opt_in_and_passes_the_policy_pack() -> None:
    mocks, outputs = stack(**PUBLIC)
    [ip] = [ip for ip in mocks.of_type("network:PublicIPAddress") if ip.props["tags"].get("spotkit-role") == "gateway"]
    assert ip.props["sku"] == {"name": "Standard"} and ip.props["publicIPAllocationMethod"] == "Static"
    [lb] = mocks.of_type("network:LoadBalancer")
    [frontend] = lb.props["frontendIPConfigurations"]
    assert "publicIPAddress" in frontend and "subnet" not in frontend
    assert lb.props["tags"]["spotkit-public-gateway"] == "true" and lb.props["tags"]["spotkit-gateway-tls"] == "true"
    [nsg] = [n for n in mocks.of_type("network:NetworkSecurityGroup") if "controller" in n.name]
    callers = [r for r in nsg.props["securityRules"] if r["name"].startswith("gateway-from-caller")]
    assert [(r["sourceAddressPrefix"], r["destinationPortRange"], r["access"]) for r in callers] == [
        ("203.0.113.0/24", "8443", "Allow"), ("198.51.100.7/32", "8443", "Allow")]
    assert all(r["priority"] < 4000 for r in callers)  # ahead of the internet deny
    gpu_nsg = [n for n in mocks.of_type("network:NetworkSecurityGroup") if "gpu" in n.name]
    assert not any(r["name"].startswith("gateway") for n in gpu_nsg for r in n.props["securityRules"])
    assert outputs["gateway_url"] == "https://198.51.100.10/v1"
    assert check_all(mocks.triples()).findings == []


def test_the_policy_pack_refuses_a_public_endpoint_without_the_opt_in() -> None:
    internal, _ = stack(**TLS)
    public, _ = stack(**PUBLIC)

    def go_public(props: dict[str, Any]) -> None:  # a frontend swapped for a public address by hand
        props["frontendIPConfigurations"][0] = {"name": "gateway", "publicIPAddress": {"id": "pip"}}

    def drop_tls(props: dict[str, Any]) -> None:
        props["probes"][0]["protocol"] = "Http"

    def open_port(props: dict[str, Any]) -> None:
        props["securityRules"].insert(0, {"name": "app", "direction": "Inbound", "access": "Allow", "priority": 300,
                                          "sourceAddressPrefix": "203.0.113.0/24", "destinationPortRange": "8443"})

    cases = [(internal, "network:LoadBalancer", "gateway", go_public, "without the gateway's opt-in"),
             (public, "network:LoadBalancer", "gateway", drop_tls, "without TLS"),
             (internal, "network:NetworkSecurityGroup", "gpu", open_port, "admits a public network on port '8443'")]
    for mocks, suffix, match, change, words in cases:
        findings = check_all(_variant(mocks, suffix, match, change)).findings
        assert {f.policy for f in findings} == {"public-gateway-by-opt-in"}, findings
        assert all(words in f.message for f in findings), findings


@pytest.mark.parametrize("change, words", [
    ({"gatewayPublic": "yes", **TLS}, "gatewayPublic = 'yes' is not true or false"),
    ({"gatewayPublic": True, "gatewayPort": 8443, "gatewayAllowedCidrs": ["203.0.113.0/24"]}, "needs TLS"),
    ({"gatewayPublic": True, **TLS}, "needs the networks allowed to call it"),
    ({**TLS, "gatewayAllowedCidrs": ["203.0.113.0/24"]}, "is for a public gateway"),
    ({"gatewayTlsCertificate": "gateway-tls"}, "gatewayTlsCertificate needs the gateway"),
    ({**PUBLIC, "gatewayAllowedCidrs": ["0.0.0.0/0"]}, "too much of the internet"),
    ({**PUBLIC, "gatewayAllowedCidrs": ["not-a-network"]}, "not a CIDR"),
    ({"gatewayPort": 8443, "gatewayTlsCertificate": "gateway_tls!"}, "not a Key Vault certificate name"),
])
def test_gateway_config_refused_in_one_line(change: dict[str, Any], words: str) -> None:
    with pytest.raises(StackConfigError) as err:
        parse_stack_config({**sample(), **change})
    assert words in str(err.value) and "\n" not in str(err.value) and "pulumi config set" in str(err.value)
