"""Start Azurite (the Azure Storage emulator, npm package ``azurite``) on free loopback ports.

The tests start it themselves; `make test` installs it with npm. A missing Azurite is an error,
never a skip: the contract suite must run on both backends.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import stop_process

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "devstoreaccount1"
# Azurite's published development key (the same in every installation; not a secret).
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def azurite_binary() -> str:
    local = REPO / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise RuntimeError("Azurite is not installed: run `make test` (it runs `npm install`) first")


@dataclass
class Azurite:
    blob_port: int
    queue_port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={DEV_KEY};"
                f"BlobEndpoint=http://127.0.0.1:{self.blob_port}/{ACCOUNT};"
                f"QueueEndpoint=http://127.0.0.1:{self.queue_port}/{ACCOUNT};")

    def stop(self, keep_data: bool = False) -> None:
        stop_process(self.process)
        if not keep_data:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self) -> Azurite:
        """Stop and start again on the same ports and data (needs a *location*)."""
        self.stop(keep_data=True)
        return start_azurite(location=self.workdir, ports=(self.blob_port, self.queue_port))


def start_azurite(timeout: float = 60.0, location: Path | None = None,
                  ports: tuple[int, int] | None = None) -> Azurite:
    """In memory by default; with *location*, data persists there (so a restart keeps it)."""
    blob, queue = ports or (free_port(), free_port())
    table = free_port()
    workdir = location or Path(tempfile.mkdtemp(prefix="azurite-"))
    storage = ["--location", str(workdir)] if location else ["--inMemoryPersistence"]
    process = subprocess.Popen(
        [azurite_binary(), "--silent", *storage, "--skipApiVersionCheck",
         "--disableTelemetry", "--blobHost", "127.0.0.1", "--blobPort", str(blob),
         "--queueHost", "127.0.0.1", "--queuePort", str(queue),
         "--tableHost", "127.0.0.1", "--tablePort", str(table)],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"Azurite exited with {process.returncode}: {err}")
        if all(_listening(p) for p in (blob, queue)):
            return Azurite(blob, queue, process, workdir)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"Azurite did not listen on ports {blob}/{queue} within {timeout} s")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
