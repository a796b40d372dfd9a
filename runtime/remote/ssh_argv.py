"""The system ``ssh`` command line for an interactive shell on a node (``spotkit node ssh``).

A shell wants a real terminal, so it is the system ssh (exec'd), not fabric. It gets what the fabric
runner gets: our known_hosts only, strict checking, the one key, no password prompts. The jump host
goes in as a ProxyCommand rather than ``-J``: options given with ``-o`` apply to the destination only,
and ``-J`` would check the jump host against ~/.ssh/known_hosts and pick keys by ~/.ssh/config.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from runtime.remote.addresses import Endpoint
from runtime.remote.runner import Jump, Target


def _common(key_file: Path, known_hosts: Path, connect_timeout: float) -> list[str]:
    return ["-F", "none",  # no ssh_config: ours are all the options
            "-i", str(key_file).replace("%", "%%"), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
            "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={_ssh_path(known_hosts)}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "CheckHostIP=no",
            "-o", f"ConnectTimeout={max(1, round(connect_timeout))}"]


def ssh_argv(target: Target, jump: Jump | None, connect_timeout: float, ssh: str = "ssh",
             command: Sequence[str] = ()) -> list[str]:
    """``ssh … user@host`` for *target* (through *jump* if any), then *command* if one is given."""
    argv = [ssh, *_common(target.key_file, target.known_hosts, connect_timeout), "-p", str(target.endpoint.port)]
    if jump is not None:
        argv += ["-o", f"ProxyCommand={_proxy_command(jump, connect_timeout, ssh)}"]
    argv.append(f"{target.user}@{target.endpoint.host}")
    if command:  # one line, its words quoted as given (as `spotkit node exec` sends them)
        argv += ["--", shlex.join(command)]
    return argv


def _proxy_command(jump: Jump, connect_timeout: float, ssh: str) -> str:
    """The inner ssh that carries the connection through the jump host (``-W %h:%p``), as one shell line
    (ssh runs a ProxyCommand with /bin/sh; a literal % must be doubled, since ssh expands %h and %p)."""
    inner = [ssh, *_common(jump.key_file, jump.known_hosts, connect_timeout), "-o", "BatchMode=yes",
             "-p", str(jump.endpoint.port), "-W", "%h:%p", _user_at(jump.endpoint)]
    return " ".join(part if part == "%h:%p" else shlex.quote(part).replace("%", "%%") for part in inner)


def _user_at(endpoint: Endpoint) -> str:
    return f"{endpoint.user}@{endpoint.host}" if endpoint.user else endpoint.host


def _ssh_path(path: Path) -> str:
    """A file path as ssh reads an ``-o`` value: % doubled (ssh expands %d, %h… in paths, ``-i``'s too),
    and quoted when it has a space (ssh splits option values on spaces)."""
    text = str(path).replace("%", "%%")
    return f'"{text}"' if " " in text else text
