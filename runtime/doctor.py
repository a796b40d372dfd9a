"""``spotkit doctor``: what can be checked live on this machine, each check a pass / fail / skip line
with the fix — for the first real deployment and for 3 a.m.

Every check uses the same settings and backends the agent or controller would, so a pass means the
real thing works here: the queue answers, the store takes a write with this identity, the metadata
service speaks Scheduled Events and names this VM as the node expects, the GPU and the libraries the
engine needs are there, the model is on disk, vLLM answers. A check that does not apply here (a CPU
machine, no translator, not on Azure with ``scheduled_events = auto``) is a skip, never a pass.
Probes are injected (commands, the clock) so the tests run it against the stand-ins.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from runtime.config import Settings
from runtime.errors import ConfigError, SpotkitError
from runtime.eviction.imds import ImdsClient
from runtime.http import HttpClient, HttpError
from runtime.models import resolve_model_path
from runtime.queue import open_queue
from runtime.records import doctor_key
from runtime.store import open_store

PASS, FAIL, SKIP = "pass", "fail", "skip"
Runner = Callable[[list[str]], tuple[int, str]]


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass | fail | skip
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def run_command(argv: list[str]) -> tuple[int, str]:
    """(exit code, output) of a short local command; 127 when it is not installed."""
    if shutil.which(argv[0]) is None:
        return 127, f"{argv[0]}: not found"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return 1, str(err)
    return done.returncode, (done.stdout or done.stderr).strip()


@dataclass
class Doctor:
    settings: Settings
    run: Runner = run_command
    clock: Callable[[], float] = time.time
    cuda_devices: Callable[[], int] = field(default=lambda: _ctranslate2_cuda_devices())
    # Checks of the layers above (the controller's Azure view: spot quota), run after this machine's own.
    extra: Sequence[Callable[[], list[Check]]] = ()

    def checks(self) -> list[Check]:
        found = [self._queue(), self._store(), *self._metadata(), *self._gpu(), self._model(), self._vllm()]
        return [check for check in found if check is not None] + [c for more in self.extra for c in more()]

    def _queue(self) -> Check:
        try:
            depth = open_queue(self.settings.queue, self.settings.max_deliveries).approximate_count()
        except SpotkitError as err:
            return Check("queue", FAIL, str(err), "check SPOTKIT_QUEUE and that this identity has the "
                                                 "'Storage Queue Data Contributor' role on the account")
        return Check("queue", PASS, f"{self.settings.queue}: {depth} messages")

    def _store(self) -> Check:
        key = doctor_key(self.settings.node_name)
        try:
            store = open_store(self.settings.store)
            store.ensure()
            stamp = json.dumps({"node": self.settings.node_name, "at": self.clock()}).encode()
            store.put(key, stamp)
            if store.get(key) != stamp:
                raise SpotkitError(f"{key} read back different bytes")
        except SpotkitError as err:
            return Check("store", FAIL, str(err), "check SPOTKIT_STORE and that this identity has the "
                                                 "'Storage Blob Data Contributor' role on the container")
        return Check("store", PASS, f"{self.settings.store}: wrote and read back {key}")

    def _metadata(self) -> list[Check]:
        mode = self.settings.scheduled_events
        if mode == "off":
            return [Check("scheduled events", SKIP, "scheduled_events = off: evictions are not watched here")]
        client = ImdsClient(self.settings.imds_endpoint, timeout=2.0)
        try:
            document = client.scheduled_events()
        except SpotkitError as err:
            if mode == "auto":
                return [Check("scheduled events", SKIP, f"not on Azure ({err}); scheduled_events = auto")]
            return [Check("scheduled events", FAIL, str(err), "the node must reach IMDS at "
                          f"{self.settings.imds_endpoint} without a proxy (169.254.169.254 is link-local)")]
        checks = [Check("scheduled events", PASS, f"{len(document.events)} events pending "
                                                  f"(incarnation {document.incarnation})")]
        try:
            name = client.vm_name()
        except SpotkitError as err:
            return [*checks, Check("vm name", FAIL, str(err), "instance metadata must answer /metadata/instance")]
        expected = self.settings.vm_name or self.settings.node_name
        if name != expected:
            checks.append(Check("vm name", FAIL, f"IMDS names this VM {name!r}, the node is {expected!r}: "
                                                 "its evictions would be ignored",
                                "set SPOTKIT_NODE_NAME (or SPOTKIT_VM_NAME) to the VM's name"))
        else:
            checks.append(Check("vm name", PASS, f"{name!r}: events for this VM are this node's"))
        return checks

    def _gpu(self) -> list[Check]:
        if self.settings.device == "cpu":
            return [Check("gpu", SKIP, "device = cpu: no GPU needed")]
        code, out = self.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"])
        if code != 0:
            return [Check("gpu", FAIL, out or f"nvidia-smi exited {code}",
                          "install the NVIDIA driver (the node image does: images/README.md) and reboot")]
        checks = [Check("gpu", PASS, out.splitlines()[0] if out else "nvidia-smi answered")]
        try:
            devices = self.cuda_devices()
        except Exception as err:
            devices, why = 0, f"{type(err).__name__}: {err}"
        else:
            why = "CTranslate2 sees no CUDA device"
        if devices < 1:
            checks.append(Check("cuda libraries", FAIL, why, "faster-whisper's CTranslate2 needs the CUDA 12 "
                                                            "runtime and cuDNN 9 (pip nvidia-cublas-cu12, "
                                                            "nvidia-cudnn-cu12) on the library path"))
        else:
            checks.append(Check("cuda libraries", PASS, f"CTranslate2 sees {devices} CUDA device(s)"))
        return checks

    def _model(self) -> Check:
        try:
            path = resolve_model_path(self.settings.model, self.settings.model_path, self.settings.model_cache_dir)
        except ConfigError as err:
            return Check("model", FAIL, str(err), f"spotkit models pull {self.settings.model}")
        return Check("model", PASS, f"{self.settings.model}: {path}")

    def _vllm(self) -> Check:
        if self.settings.translator != "vllm":
            return Check("vllm", SKIP, f"translator = {self.settings.translator}: no vLLM on this node")
        base = self.settings.vllm_url.rstrip("/").removesuffix("/v1")
        try:
            reply = HttpClient(5.0).get(f"{base}/health", accept=lambda status: True)
        except HttpError as err:
            return Check("vllm", FAIL, f"{base}/health: {err}", "see docs/runbooks/vllm-crash-loop.md")
        if reply.status != 200:
            return Check("vllm", FAIL, f"{base}/health answered {reply.status}", "see docs/runbooks/vllm-crash-loop.md")
        return Check("vllm", PASS, f"{base}/health answered 200")


def _ctranslate2_cuda_devices() -> int:
    import ctranslate2

    return int(ctranslate2.get_cuda_device_count())
