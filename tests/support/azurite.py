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

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_azurite(timeout: float = 60.0) -> Azurite:
    blob, queue, table = free_port(), free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
    process = subprocess.Popen(
        [azurite_binary(), "--silent", "--inMemoryPersistence", "--skipApiVersionCheck",
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
