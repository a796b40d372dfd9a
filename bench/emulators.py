"""Azurite and moto for the benchmarks, started on free loopback ports and stopped after: the bench
measures the kit's queue traffic against the services' emulators without the test tree."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (the same in every installation; not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(process: subprocess.Popen[bytes], ports: list[int], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        if all(socket.socket().connect_ex(("127.0.0.1", p)) == 0 for p in ports):
            return
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{what} did not listen within {timeout} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def azurite() -> Iterator[dict[str, str]]:
    """The environment that points spotkit's Azure backends at a fresh in-memory Azurite."""
    binary = REPO / "node_modules" / ".bin" / "azurite"
    found = str(binary) if binary.exists() else shutil.which("azurite")
    if not found:
        raise SystemExit("bench/queue needs Azurite: run `make node_modules/.installed`")
    blob, queue, table = _port(), _port(), _port()
    workdir = tempfile.mkdtemp(prefix="azurite-bench-")
    process = subprocess.Popen([found, "--silent", "--inMemoryPersistence", "--skipApiVersionCheck",
                                "--disableTelemetry", "--blobPort", str(blob), "--queuePort", str(queue),
                                "--tablePort", str(table)], cwd=workdir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(process, [blob, queue], "Azurite")
        yield {"AZURE_STORAGE_CONNECTION_STRING": (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{blob}/{AZURITE_ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{queue}/{AZURITE_ACCOUNT};")}
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def moto() -> Iterator[dict[str, str]]:
    """The environment that points spotkit's AWS backends at a fresh moto server."""
    beside = Path(sys.executable).parent / "moto_server"
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if not found:
        raise SystemExit("bench/queue needs moto_server: run `make .venv/.installed`")
    port = _port()
    process = subprocess.Popen([found, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(process, [port], "moto_server")
        yield {"SPOTKIT_AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
               "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
    finally:
        _stop(process)
