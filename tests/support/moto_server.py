"""Start moto in server mode (``moto_server``, from the ``moto[server]`` package) on a free loopback port.

One process serves SQS and S3 at one endpoint, as real AWS would at two; the tests point spotkit at it
with ``SPOTKIT_AWS_ENDPOINT_URL`` and moto's fixed test credentials. A missing moto is an error, never
a skip: the contract suites must run on every backend.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.azurite import _listening, free_port
from tests.support.processes import stop_process

REGION = "us-east-1"


def moto_binary() -> str:
    beside = Path(sys.executable).parent / "moto_server"
    if beside.exists():
        return str(beside)
    found = shutil.which("moto_server")
    if found:
        return found
    raise RuntimeError("moto_server is not installed: run `make .venv/.installed` (moto[server] is a dev dependency)")


@dataclass
class MotoServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What a spotkit process needs to use this server as AWS (moto accepts any credentials)."""
        return {"SPOTKIT_AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}

    def stop(self) -> None:
        stop_process(self.process)


def start_moto(timeout: float = 60.0) -> MotoServer:
    port = free_port()
    # It logs every request: to a file, never a pipe nobody reads (a full pipe would stall the server).
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([moto_binary(), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"moto_server exited with {process.returncode}: {log.read()[-2000:].decode()}")
        if _listening(port):
            return MotoServer(port, process)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"moto_server did not listen on port {port} within {timeout} s")
