"""`spotkit doctor` against the real parts it checks: the embedded queue and store, the metadata
emulator speaking Scheduled Events, the vLLM stand-in as a process; the GPU probes injected (no GPU
here). Every check passes when things are right, and each fails with its fix when one is not."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.config import Settings, load_settings
from runtime.doctor import FAIL, PASS, SKIP, Doctor
from runtime.fleet.metadata_server import MetadataServer
from tests.cli.test_cli import spotkit
from tests.support.azurite import free_port

NVIDIA_SMI = "Tesla T4, 550.54.15, 15360 MiB"


def nvidia(argv: list[str]) -> tuple[int, str]:
    assert argv[0] == "nvidia-smi"
    return 0, NVIDIA_SMI


@pytest.fixture
def imds() -> Iterator[MetadataServer]:
    server = MetadataServer(default_vm="spot-1").start()
    yield server
    server.stop()


@pytest.fixture
def vllm() -> Iterator[str]:
    port = free_port()
    child = subprocess.Popen([sys.executable, "-m", "tests.support.vllm_standin", "serve", "m", "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        child.kill()
        child.wait(10)


def node(tmp_path: Path, imds: MetadataServer, **overrides: object) -> Settings:
    values: dict[str, object] = dict(home=tmp_path / "home", node_name="spot-1", scheduled_events="on",
                                     imds_endpoint=imds.url, device="cuda", compute_type="int8_float16")
    values.update(overrides)
    return load_settings(env={}, **values)


def test_a_healthy_gpu_node_passes_every_check(tmp_path: Path, imds: MetadataServer, vllm: str) -> None:
    checks = Doctor(node(tmp_path, imds, translator="vllm", vllm_url=vllm), run=nvidia,
                    cuda_devices=lambda: 1).checks()
    assert {c.name: c.status for c in checks} == {
        "queue": PASS, "store": PASS, "scheduled events": PASS, "vm name": PASS, "gpu": PASS,
        "cuda libraries": PASS, "model": PASS, "vllm": PASS}
    assert next(c for c in checks if c.name == "gpu").detail == NVIDIA_SMI


def test_each_broken_part_fails_with_its_fix(tmp_path: Path, imds: MetadataServer) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    (tmp_path / "not-a-dir").write_text("x")
    settings = node(tmp_path, imds, node_name="spot-9", translator="vllm", vllm_url=closed, model="large-v3",
                    store=f"file://{tmp_path / 'not-a-dir' / 'store'}")
    checks = {c.name: c for c in Doctor(settings, run=lambda argv: (127, "nvidia-smi: not found"),
                                        cuda_devices=lambda: 0).checks()}
    failed = {name for name, c in checks.items() if c.status == FAIL}
    assert failed == {"store", "vm name", "gpu", "model", "vllm"}, checks
    assert "'spot-1'" in checks["vm name"].detail and "SPOTKIT_NODE_NAME" in checks["vm name"].fix
    assert "Storage Blob Data Contributor" in checks["store"].fix
    assert checks["model"].fix == "spotkit models pull large-v3"
    assert all(c.fix for c in checks.values() if c.status == FAIL)


def test_off_azure_and_on_a_cpu_the_checks_that_do_not_apply_are_skips(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    settings = load_settings(env={}, home=tmp_path / "home", scheduled_events="auto", imds_endpoint=closed)
    checks = {c.name: c.status for c in Doctor(settings).checks()}
    assert checks == {"queue": PASS, "store": PASS, "scheduled events": SKIP, "gpu": SKIP, "model": PASS,
                      "vllm": SKIP}


def test_the_cli_exits_1_on_a_failure_and_says_it_as_json(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ok = spotkit(home, "doctor", "--json", env={"SPOTKIT_SCHEDULED_EVENTS": "off"})
    assert ok.returncode == 0 and {c["status"] for c in json.loads(ok.stdout)} <= {PASS, SKIP}
    bad = spotkit(home, "doctor", "--json", env={"SPOTKIT_SCHEDULED_EVENTS": "off", "SPOTKIT_MODEL": "large-v3"})
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    [model] = [c for c in json.loads(bad.stdout) if c["name"] == "model"]
    assert model["status"] == FAIL and "spotkit models pull large-v3" in model["fix"]
    table = spotkit(home, "doctor", env={"SPOTKIT_SCHEDULED_EVENTS": "off"})
    assert table.returncode == 0 and "PASS" in table.stdout and "queue" in table.stdout
    [quota] = [c for c in json.loads(ok.stdout) if c["name"] == "spot quota"]  # on a node: not its check
    assert quota["status"] == SKIP
    half = spotkit(home, "doctor", "--json", env={"SPOTKIT_SCHEDULED_EVENTS": "off",
                                                  "SPOTKIT_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001"})
    [quota] = [c for c in json.loads(half.stdout) if c["name"] == "spot quota"]
    assert half.returncode == 1 and quota["status"] == FAIL and "--resource-group" in quota["detail"]
