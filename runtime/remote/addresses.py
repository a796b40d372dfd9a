"""Where a node answers SSH, and the jump host in front of the slots: parsed once, refused when wrong.

Nodes have no public address (infra/components/network.py): on Azure each slot's private address
comes from the stack (``pulumi stack output slot_addresses``) and every connection goes through the
jump host (``pulumi stack output jump_host``). Both arrive as plain text in the environment,
``SPOTKIT_SLOT_ADDRESSES=slot-1=10.0.1.4,slot-2=10.0.1.5`` and ``SPOTKIT_JUMP_HOST=user@host:port``,
so that a laptop, the controller host and the tests (sshd on 127.0.0.1, any port) read them alike.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from runtime.errors import ConfigError

SSH_PORT = 22
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # node and VM names (infra/custom_data.py's rule)
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Endpoint:
    """An SSH server: host (a name, an IPv4 or an IPv6 address) and port; *user* only for a jump host."""

    host: str
    port: int = SSH_PORT
    user: str = ""

    def known_hosts_name(self) -> str:
        """The name ssh and paramiko look a host key up by: ``host``, or ``[host]:port`` off port 22."""
        return self.host if self.port == SSH_PORT else f"[{self.host}]:{self.port}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{host}:{self.port}"


def parse_endpoint(text: str, where: str) -> Endpoint:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address; *where* names the setting."""
    spec = text.strip()
    port_text = ""
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"{where}: {text!r} is not [IPv6]:port")
        port_text = rest[1:]
        _check_ip(host, text, where)
    elif spec.count(":") == 1:
        host, port_text = spec.split(":")
    else:
        host = spec  # a name, an IPv4 address, or an IPv6 address without a port
    if ":" in host:
        _check_ip(host, text, where)
    elif not _HOSTNAME.match(host):
        raise ConfigError(f"{where}: {text!r} has no valid host name or address")
    port = SSH_PORT
    if port_text or spec.endswith(":"):
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ConfigError(f"{where}: {text!r} has port {port_text!r}; a port is 1..65535")
        port = int(port_text)
    return Endpoint(host=host, port=port)


def _check_ip(host: str, text: str, where: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} has no valid IP address") from None


def parse_addresses(text: str, where: str = "SPOTKIT_SLOT_ADDRESSES") -> dict[str, Endpoint]:
    """``node=host[:port],...`` as node -> endpoint. Two nodes at one endpoint are refused: their host
    keys would both be trusted there."""
    found: dict[str, Endpoint] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, sep, address = item.partition("=")
        node = node.strip()
        if not sep or not node or not address.strip():
            raise ConfigError(f"{where}: {item!r} is not NODE=HOST[:PORT] "
                              "(e.g. spotkit-dev-slot-1=10.0.1.4,spotkit-dev-slot-2=10.0.1.5)")
        if not _NAME.match(node):
            raise ConfigError(f"{where}: {node!r} is not a node name (letters, digits, '.', '_', '-')")
        if node in found:
            raise ConfigError(f"{where}: {node} is listed twice")
        endpoint = parse_endpoint(address, f"{where} ({node})")
        clash = next((other for other, seen in found.items() if seen == endpoint), None)
        if clash:
            raise ConfigError(f"{where}: {clash} and {node} are both at {endpoint}; each node needs its own")
        found[node] = endpoint
    return found


def parse_jump_host(text: str, default_user: str, where: str = "SPOTKIT_JUMP_HOST") -> Endpoint:
    """``[user@]host[:port]``; the user defaults to the nodes' (Azure puts one admin on every VM)."""
    user, sep, rest = text.strip().rpartition("@")
    if not sep:
        user, rest = default_user, text.strip()
    if not _USER.match(user):
        raise ConfigError(f"{where}: {text!r} has no valid user name before '@'")
    endpoint = parse_endpoint(rest, where)
    return Endpoint(host=endpoint.host, port=endpoint.port, user=user)
