"""How ``spotkit node ssh|exec|logs|restart`` reach the nodes: environment first, flags over it.

These are the operator's settings, not a node's, so they stay out of `runtime.config.Settings` (which
every agent validates at start). Each error names the variable and the fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError
from runtime.remote.addresses import Endpoint, parse_addresses, parse_jump_host

ADMIN_USER = "azureuser"  # the admin every VM gets from the stack (infra/components/vm.py)
# journalctl as the admin: Ubuntu's default user is in group adm, which reads the system journal.
DEFAULT_LOGS_COMMAND = "journalctl -u spotkit-agent --no-pager --output=short-iso -n {lines} {follow}"
# -n: fail at once, never wait for a password prompt nobody can answer (the admin has NOPASSWD sudo).
DEFAULT_RESTART_COMMAND = "sudo -n systemctl restart spotkit-agent"
ENV = {
    "addresses": "SPOTKIT_SLOT_ADDRESSES",
    "jump_host": "SPOTKIT_JUMP_HOST",
    "user": "SPOTKIT_SSH_USER",
    "key_file": "SPOTKIT_SSH_KEY",
    "jump_known_hosts": "SPOTKIT_JUMP_KNOWN_HOSTS",
    "connect_timeout": "SPOTKIT_SSH_CONNECT_TIMEOUT",
    "command_timeout": "SPOTKIT_SSH_COMMAND_TIMEOUT",
    "logs_command": "SPOTKIT_LOGS_COMMAND",
    "restart_command": "SPOTKIT_RESTART_COMMAND",
}


@dataclass(frozen=True)
class RemoteSettings:
    addresses: dict[str, Endpoint] = field(default_factory=dict)
    jump: Endpoint | None = None
    user: str = ADMIN_USER
    key_file: Path = field(default_factory=lambda: Path("~/.ssh/id_ed25519").expanduser())
    jump_known_hosts: Path = field(default_factory=lambda: Path("~/.ssh/known_hosts").expanduser())
    connect_timeout: float = 10.0  # TCP connect, SSH banner and authentication, each
    command_timeout: float = 120.0  # a command's whole run (not `logs --follow`)
    logs_command: str = DEFAULT_LOGS_COMMAND
    restart_command: str = DEFAULT_RESTART_COMMAND

    def logs(self, lines: int, follow: bool) -> str:
        """The logs command with its ``{lines}`` and ``{follow}`` placeholders filled in."""
        return self.logs_command.replace("{lines}", str(lines)).replace("{follow}", "-f" if follow else "").strip()

    def key(self) -> Path:
        """The private key, checked before any connection so a typo is one line, not an auth failure."""
        if not self.key_file.is_file():
            raise ConfigError(f"{ENV['key_file']}: {self.key_file} is not a file; name the private key whose "
                              ".pub is the stack's adminSshPublicKey")
        if self.key_file.suffix == ".pub":
            raise ConfigError(f"{ENV['key_file']}: {self.key_file} is a public key; name the private key beside it")
        return self.key_file


def load_remote_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> RemoteSettings:
    """Defaults, then ``SPOTKIT_*`` variables (`ENV`), then *overrides* that are not None."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {key: env[name] for key, name in ENV.items() if env.get(name)}
    raw.update({key: value for key, value in overrides.items() if value is not None})
    defaults = RemoteSettings()
    user = str(raw.get("user", defaults.user))
    values: dict[str, Any] = {"user": user}
    if "addresses" in raw:
        values["addresses"] = parse_addresses(str(raw["addresses"]), ENV["addresses"])
    if raw.get("jump_host"):
        values["jump"] = parse_jump_host(str(raw["jump_host"]), user, ENV["jump_host"])
    for key in ("key_file", "jump_known_hosts"):
        if key in raw:
            values[key] = Path(str(raw[key])).expanduser()
    for key in ("connect_timeout", "command_timeout"):
        if key in raw:
            values[key] = _seconds(key, raw[key])
    for key in ("logs_command", "restart_command"):
        if key in raw:
            values[key] = str(raw[key]).strip()
    settings = replace(defaults, **values)
    for placeholder in ("{lines}", "{follow}"):
        if placeholder not in settings.logs_command:
            raise ConfigError(f"{ENV['logs_command']} = {settings.logs_command!r} lacks {placeholder} "
                              f"(e.g. {DEFAULT_LOGS_COMMAND!r}, or 'tail -n {{lines}} {{follow}} FILE')")
    if not settings.restart_command:
        raise ConfigError(f"{ENV['restart_command']} is empty; e.g. {DEFAULT_RESTART_COMMAND!r}")
    return settings


def _seconds(key: str, value: object) -> float:
    try:
        number = float(str(value))
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{ENV[key]} = {value!r} must be a number of seconds above 0")
    return number
