"""Real OpenSSH servers on loopback for the remote-command tests: a node's sshd, a jump host's.

Each one gets its own generated host key, a config that lets in exactly one generated client key
(key authentication only, no PAM), and a free port on 127.0.0.1. ``make system-packages`` installs
openssh-server; a missing sshd is an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.azurite import free_port
from tests.support.processes import stop_process


def sshd_binary() -> str:
    found = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/sbin/sshd") if os.access(p, os.X_OK)), None)
    if found is None:
        raise RuntimeError("sshd is not installed: run `make system-packages` (openssh-server)")
    return found


def keygen(path: Path, kind: str = "ed25519") -> Path:
    """A new key pair at *path* (private) and *path*.pub; returns the public key's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", path.name, "-f", str(path)], check=True,
                   timeout=60)
    return path.with_name(path.name + ".pub")


@dataclass
class Sshd:
    name: str
    port: int
    folder: Path
    host_public_key: Path
    process: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.folder / "sshd.log"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


def start_sshd(folder: Path, name: str, authorized_key: Path, env: dict[str, str] | None = None,
               log_level: str = "VERBOSE") -> Sshd:
    """sshd as *name* on a free loopback port, letting in *authorized_key* (a .pub) as the current user.
    *env* is set in every session (sshd's SetEnv): how a test tells nodes apart from the inside."""
    folder.mkdir(parents=True, exist_ok=True)
    host_key = folder / "ssh_host_ed25519_key"
    host_public = keygen(host_key)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation's chroot
    for _attempt in range(5):  # a free port can be taken between choosing it and sshd binding it
        port = free_port()
        lines = [f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", "PidFile none",
                 f"AuthorizedKeysFile {authorized_key}", "UsePAM no", "StrictModes no",
                 "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                 "PermitRootLogin prohibit-password", "AllowTcpForwarding yes", "PrintMotd no",
                 "MaxStartups 50", f"LogLevel {log_level}"]
        lines += [f"SetEnv {key}={value}" for key, value in (env or {}).items()]
        config = folder / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        log = (folder / "sshd.log").open("ab")
        process = subprocess.Popen([sshd_binary(), "-D", "-e", "-f", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        if _answers(port, process):
            return Sshd(name, port, folder, host_public, process)
        if process.poll() is None:
            process.kill()
        process.wait()
    raise RuntimeError(f"sshd {name} did not start; its log:\n{(folder / 'sshd.log').read_text(errors='replace')}")


def _answers(port: int, process: subprocess.Popen[bytes], within: float = 20.0) -> bool:
    """True once sshd sends its SSH banner on *port*; False if it exits (the port was taken) or never does."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.recv(64).startswith(b"SSH-2.0-"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def silent_server() -> tuple[socket.socket, int]:
    """A listening socket that accepts (the kernel's backlog) and never says a word: a host that takes the
    TCP connection and never answers SSH. Close the socket when done."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock, int(sock.getsockname()[1])


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    return free_port()
