"""Host keys: a node publishes its public SSH host keys, the CLI builds known_hosts from them.

Why: strict host-key checking needs the right key *before* the first connection. Accepting whatever a
server shows the first time (trust on first use) is exactly the blind trust a jump host does not
remove. The node reads its own ``/etc/ssh/ssh_host_*_key.pub`` at agent start and writes them to the
store with its managed identity (``spotkit node publish-host-keys``, the agent unit's ExecStartPre);
the operator's CLI reads them back with its own credential. Whoever could replace a record there
could already rewrite results. Only public keys travel: a file holding a private key is refused, and
nothing comes through custom data (which anyone who can read the VM model sees).
"""

from __future__ import annotations

import base64
import binascii
import glob
import hashlib
import os
import struct
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from runtime.errors import ConfigError
from runtime.records import NodeHostKeys, dump, host_keys_key
from runtime.remote.addresses import Endpoint
from runtime.store.base import ObjectStore

DEFAULT_HOST_KEY_FILES = "/etc/ssh/ssh_host_*_key.pub"
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
_MAX_KEY_FILE_BYTES = 16 * 1024  # an RSA-16384 public key is under 3 KB


def parse_public_key(line: str, where: str) -> str:
    """``TYPE BASE64`` of one OpenSSH public-key line (the comment dropped), checked: a known type, valid
    base64, and a blob that names the same type (so a truncated or pasted-together line is refused)."""
    parts = line.split()
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise ConfigError(f"{where}: not an OpenSSH public key (expected one of {', '.join(KEY_TYPES)} "
                          "then the key)")
    kind, data = parts[0], parts[1]
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: the {kind} key is not valid base64") from None
    if len(blob) < 4 or blob[4:4 + struct.unpack(">I", blob[:4])[0]] != kind.encode():
        raise ConfigError(f"{where}: the key data does not hold a {kind} key")
    return f"{kind} {data}"


def fingerprint(key: str) -> str:
    """``SHA256:…`` as ``ssh-keygen -l`` and ssh's own messages print it."""
    blob = base64.b64decode(key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def read_host_key_files(pattern: str = DEFAULT_HOST_KEY_FILES) -> list[str]:
    """The public host keys matching *pattern* (a glob), sorted by file name. A match that is not a
    ``.pub`` file, or holds anything private, is refused: the caller publishes what this returns."""
    keys = []
    for name in sorted(glob.glob(pattern)):
        path = Path(name)
        if path.suffix != ".pub":
            raise ConfigError(f"{path}: only public host keys (*.pub) are published; fix the pattern {pattern!r}")
        try:
            with path.open("rb") as handle:
                raw = handle.read(_MAX_KEY_FILE_BYTES + 1)
        except OSError as err:
            raise ConfigError(f"cannot read host key {path} ({err.strerror})") from None
        text = raw.decode("utf-8", errors="replace")
        if b"PRIVATE KEY" in raw or len(raw) > _MAX_KEY_FILE_BYTES:
            raise ConfigError(f"{path} is not a public key file; refusing to publish it")
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if len(lines) != 1:
            raise ConfigError(f"{path}: expected one public key line, found {len(lines)}")
        keys.append(parse_public_key(lines[0], str(path)))
    return keys


def publish_host_keys(store: ObjectStore, node: str, pattern: str = DEFAULT_HOST_KEY_FILES,
                      clock: Callable[[], float] | None = None) -> NodeHostKeys:
    """Write *node*'s public host keys to the store (overwriting: a re-created VM has new ones)."""
    keys = read_host_key_files(pattern)
    if not keys:
        raise ConfigError(f"no host key matches {pattern!r}: is sshd installed, and has it made its keys? "
                          "(set the pattern with --keys)")
    record = NodeHostKeys(node=node, keys=keys, published_at=(clock or time.time)())
    store.put(host_keys_key(node), dump(record))
    return record


def known_hosts_lines(addresses: Mapping[str, Endpoint], records: Mapping[str, NodeHostKeys]) -> list[str]:
    """One known_hosts line per published key of every node that has an address, keyed by the address
    the connection uses. A key in a record that does not parse is left out (its node then fails the
    host-key check with a clear line rather than being trusted)."""
    lines = []
    for node in sorted(addresses):
        record = records.get(node)
        for key in record.keys if record else []:
            try:
                checked = parse_public_key(key, host_keys_key(node))
            except ConfigError:
                continue
            lines.append(f"{addresses[node].known_hosts_name()} {checked}")
    return lines


def write_known_hosts(path: Path, lines: list[str]) -> Path:
    """Replace *path* atomically (another spotkit may be reading it): ssh reads it, and so does fabric."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text("".join(f"{line}\n" for line in lines))
    os.replace(partial, path)
    return path
