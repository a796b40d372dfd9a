"""``spotkit serve`` as an operator runs it: a process that answers health, readiness and the SDK's
model listing on its port, writes one JSON access line a request to stderr, and refuses bad flags."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import openai

from tests.cli.test_cli import spotkit
from tests.support.processes import stop_process


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_on_its_port_and_logs_requests_without_the_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = json.loads(spotkit(home, "keys", "create", "team-ops", "--json").stdout)["key"]
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTKIT_") and k not in ("COLUMNS", "LINES")}
    env["SPOTKIT_TRANSCRIBER"] = "simulated"
    process = subprocess.Popen([sys.executable, "-m", "spotkit", "--home", str(home), "serve", "--port", str(port),
                                "--spool-dir", str(tmp_path / "spool")], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                if httpx2.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                assert time.monotonic() < deadline, "spotkit serve did not answer"
                time.sleep(0.2)
        assert httpx2.get(f"{base}/readyz", timeout=10).json() == {"ready": True}
        models = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0).models.list()
        assert [m.id for m in models.data] == ["tiny.en", "whisper-1"]
    finally:
        stop_process(process)
    _, stderr = process.communicate()
    access = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert [(a["route"], a["status"]) for a in access] == [("models", 200)], stderr
    assert key.split("-", 3)[3] not in stderr


def test_serve_refuses_half_a_tls_pair(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    result = spotkit(tmp_path / "home", "serve", "--tls-cert", str(cert))
    assert result.returncode == 2 and "--tls-cert and --tls-key go together" in result.stderr
