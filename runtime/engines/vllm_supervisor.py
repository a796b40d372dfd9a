"""Run ``vllm serve`` as a child of the node agent: start it, wait until healthy, restart it if it dies.

vLLM is a separate process (its own CUDA context, its own engine-core subprocess) so the agent can
outlive an engine crash and stop it cleanly on drain. The flags come from a `MemoryPlan`, so vLLM
takes exactly the share of the GPU that the plan leaves after faster-whisper. The child runs offline
(``HF_HUB_OFFLINE=1``) against the persistent-disk cache: a spot node must never download at serve time.

Only tested against ``tests/support/vllm_standin.py``; never run with real vLLM on a GPU.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from runtime.engines.memory_planner import MemoryPlan
from runtime.errors import EngineError
from runtime.http import HttpClient, HttpError

log = logging.getLogger("spotkit.vllm")
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential restart delays for a crashed child, and when to stop trying. Not a call retry
    (those are `runtime.retry.RetryPolicy`): a crash-loop budget over a time window.

    No jitter: there is one vLLM per node, so there is no herd to spread out. Giving up after
    ``max_restarts`` crashes within ``window_seconds`` stops a crash loop (bad weights, OOM) from
    hiding behind restarts; the node then reports ``failed`` and its work goes elsewhere.
    """

    base_seconds: float = 2.0
    factor: float = 2.0
    max_seconds: float = 60.0
    max_restarts: int = 5
    window_seconds: float = 600.0

    def delay(self, attempt: int) -> float:
        """Delay before restart number ``attempt`` (0-based) of the current window."""
        return float(min(self.max_seconds, self.base_seconds * self.factor**attempt))

    def recent(self, crash_times: Sequence[float], now: float) -> list[float]:
        return [t for t in crash_times if now - t <= self.window_seconds]

    def gives_up(self, crash_times: Sequence[float], now: float) -> bool:
        return len(self.recent(crash_times, now)) > self.max_restarts


class EngineState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class VllmMetrics:
    """The vLLM gauges and counters the agent reports, by their current names.

    ``kv_cache_usage_perc`` is a fraction in [0, 1] despite its name (it replaced
    ``vllm:gpu_cache_usage_perc``). Values are summed over label sets (engines), the usage is the max.
    """

    prompt_tokens_total: float
    generation_tokens_total: float
    num_requests_running: float
    num_requests_waiting: float
    kv_cache_usage_perc: float


_SUMMED = {
    "vllm:prompt_tokens_total": "prompt_tokens_total",
    "vllm:generation_tokens_total": "generation_tokens_total",
    "vllm:num_requests_running": "num_requests_running",
    "vllm:num_requests_waiting": "num_requests_waiting",
}
_MAXED = {"vllm:kv_cache_usage_perc": "kv_cache_usage_perc"}


def parse_metrics(text: str) -> VllmMetrics:
    """Pick our five metrics out of a Prometheus text page; a missing one is an error, not a zero,
    so a rename in a future vLLM shows up at once instead of as a silent flat line."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in _SUMMED:
                key = _SUMMED[sample.name]
                values[key] = values.get(key, 0.0) + sample.value
            elif sample.name in _MAXED:
                key = _MAXED[sample.name]
                values[key] = max(values.get(key, -math.inf), sample.value)
    missing = sorted(name for name, key in (_SUMMED | _MAXED).items() if key not in values)
    if missing:
        raise EngineError(f"vLLM /metrics lacks {', '.join(missing)}; has vLLM renamed them?")
    return VllmMetrics(**values)


def vllm_serve_argv(model: str, model_dir: Path, port: int, plan: MemoryPlan, hf_home: Path,
                    host: str = "127.0.0.1", executable: Sequence[str] = ("vllm",)) -> list[str]:
    """The ``vllm serve`` command line for a plan. Binds to localhost: only the agent talks to it."""
    argv = [*executable, "serve", str(model_dir), "--served-model-name", model, "--dtype", plan.dtype,
            "--max-model-len", str(plan.max_model_len),
            "--gpu-memory-utilization", f"{plan.gpu_memory_utilization:.2f}",
            "--host", host, "--port", str(port), "--download-dir", str(hf_home / "hub")]
    if plan.quantization:
        argv += ["--quantization", plan.quantization]
    return argv


def child_env(base: Mapping[str, str], hf_home: Path) -> dict[str, str]:
    """The child's environment: offline Hugging Face cache on the persistent disk, no usage stats."""
    env = dict(base)
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1")
    return env


@dataclass(frozen=True)
class RestartRecord:
    at: float
    exit_code: int | None
    delay_seconds: float


class VllmSupervisor:
    """Owns one ``vllm serve`` child. ``command`` replaces the ``vllm`` executable (tests pass the
    stand-in); the arguments after it are always the real ones from `vllm_serve_argv`."""

    def __init__(self, model: str, model_dir: Path, port: int, plan: MemoryPlan, *, hf_home: Path,
                 log_path: Path, command: list[str] | None = None, health_timeout_seconds: float = 600.0,
                 restart_backoff: RestartPolicy | None = None, http_timeout_seconds: float = 5.0,
                 poll_interval_seconds: float = 0.5, kill_grace_seconds: float = 10.0, host: str = "127.0.0.1",
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] | None = None,
                 base_env: Mapping[str, str] | None = None, unhealthy_after_seconds: float = 60.0,
                 liveness_interval_seconds: float = 5.0) -> None:
        self.model, self.port, self.host = model, port, host
        self.argv = vllm_serve_argv(model, model_dir, port, plan, hf_home, host, command or ("vllm",))
        self.env = child_env(os.environ if base_env is None else base_env, hf_home)
        self.log_path = log_path
        self.health_timeout_seconds = health_timeout_seconds
        self.backoff = restart_backoff or RestartPolicy()
        self.http_timeout_seconds = http_timeout_seconds
        # Loopback, tried once: the health poll and the liveness loop are the retries.
        self._http = HttpClient(http_timeout_seconds, proxies=False)
        self.poll_interval_seconds = poll_interval_seconds
        self.kill_grace_seconds = kill_grace_seconds
        # A server that is alive but has stopped answering /health (a hung engine) is restarted too.
        self.unhealthy_after_seconds = unhealthy_after_seconds
        self.liveness_interval_seconds = liveness_interval_seconds
        self._unhealthy_since: float | None = None
        self._last_liveness = -math.inf
        self.clock = clock
        self._stopping = threading.Event()
        self.sleep = sleep or self._wait  # default: a wait that stop() cuts short
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._monitor: threading.Thread | None = None
        self._crashes: list[float] = []
        self.state = EngineState.STOPPED
        self.restarts = 0
        self.restart_history: list[RestartRecord] = []

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    @property
    def ready(self) -> bool:
        return self.state is EngineState.READY

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    def start(self) -> None:
        """Spawn the child and block until ``/health`` answers 200; then watch it from a thread.

        Raises `EngineError` (with the tail of the child's output) if it exits or is not healthy
        within ``health_timeout_seconds``; the child is killed and the state is ``failed``.
        """
        if self.state not in (EngineState.STOPPED, EngineState.FAILED):
            raise EngineError(f"vLLM supervisor already {self.state}")
        self._stopping.clear()
        self._crashes.clear()
        self.state = EngineState.STARTING
        try:
            self._launch_until_healthy()
        except EngineError:
            self.state = EngineState.STOPPED if self._stopping.is_set() else EngineState.FAILED
            raise
        with self._lock:  # a stop() that raced the health check wins
            if self._stopping.is_set():
                self.state = EngineState.STOPPED
                raise EngineError("vLLM start interrupted by stop()")
            self.state = EngineState.READY
            self._monitor = threading.Thread(target=self._watch, name=f"vllm-monitor-{self.port}", daemon=True)
            self._monitor.start()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the child's process group, SIGKILL it after ``timeout``. Safe to call twice."""
        self._stopping.set()
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            _terminate_group(proc, timeout)
        monitor = self._monitor
        if monitor is not None and monitor is not threading.current_thread():
            monitor.join(timeout=timeout + self.http_timeout_seconds)
        self._monitor = None
        self.state = EngineState.STOPPED

    def metrics(self) -> VllmMetrics:
        return parse_metrics(self._get("/metrics")[1].decode("utf-8", "replace"))

    def healthy(self, timeout: float | None = None) -> bool:
        """One ``GET /health``; any connection error or non-200 answer is simply "not healthy"."""
        try:
            return self._get("/health", timeout)[0] == 200
        except EngineError:
            return False

    def _get(self, path: str, timeout: float | None = None) -> tuple[int, bytes]:
        try:
            reply = self._http.get(self.base_url + path, timeout=timeout, accept=lambda status: True)
        except HttpError as err:
            raise EngineError(f"vLLM: {err}", transient=True) from err
        return reply.status, reply.body

    def _launch_until_healthy(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                raise EngineError("vLLM supervisor is stopping")
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as out:
                self._log_offset = out.tell()
                out.write(f"--- spotkit: starting {' '.join(self.argv)}\n".encode())
                out.flush()
                proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        env=self.env, start_new_session=True)
            self._proc = proc
        deadline = self.clock() + self.health_timeout_seconds
        while True:
            code, remaining = proc.poll(), deadline - self.clock()
            if self._stopping.is_set() or code is not None or remaining <= 0:
                self._kill(proc)  # the whole group: an engine-core grandchild may still hold GPU memory
                if self._stopping.is_set():
                    why = "start interrupted by stop()"
                elif code is not None:
                    why = f"exited with code {code} before becoming healthy"
                else:
                    why = f"not healthy within {self.health_timeout_seconds:g}s"
                raise EngineError(f"vLLM {why}; last output:\n{self.log_tail()}")
            if self.healthy(timeout=min(self.http_timeout_seconds, remaining)):
                return
            self.sleep(min(self.poll_interval_seconds, max(0.0, deadline - self.clock())))

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if self._proc is proc:
                self._proc = None
        _terminate_group(proc, timeout=self.kill_grace_seconds)

    def _watch(self) -> None:
        """Monitor thread: notice a dead child, back off, restart; give up after too many crashes."""
        while not self._stopping.is_set():
            proc = self._proc
            if proc is not None and proc.poll() is None:
                if self._hung(proc):
                    continue
                self.sleep(self.poll_interval_seconds)
                continue
            if self._stopping.is_set():
                return
            code = proc.poll() if proc is not None else None
            if proc is not None:
                self._kill(proc)  # the API server died; its engine core must not keep the GPU memory
            now = self.clock()
            self._crashes = recent = self.backoff.recent([*self._crashes, now], now)
            if self.backoff.gives_up(recent, now):
                log.error("vLLM exited (code %s) %d times in %gs; giving up. Last output:\n%s",
                          code, len(recent), self.backoff.window_seconds, self.log_tail())
                self.state = EngineState.FAILED
                return
            delay = self.backoff.delay(len(recent) - 1)
            self.state = EngineState.RESTARTING
            self.restart_history.append(RestartRecord(at=now, exit_code=code, delay_seconds=delay))
            log.warning("vLLM exited with code %s; restart %d in %.2fs. Last output:\n%s",
                        code, len(recent), delay, self.log_tail())
            self.sleep(delay)
            if self._stopping.is_set():
                return
            try:
                self._launch_until_healthy()
            except EngineError as err:
                if not self._stopping.is_set():
                    log.warning("vLLM restart failed: %s", err)
                continue
            self.restarts += 1
            self.state = EngineState.READY
            log.info("vLLM healthy again after restart %d (pid %s)", self.restarts, self.pid)

    def _hung(self, proc: subprocess.Popen[bytes]) -> bool:
        """Check /health now and then; kill a server unhealthy for too long (the restart path follows)."""
        now = self.clock()
        if self.state != EngineState.READY or now - self._last_liveness < self.liveness_interval_seconds:
            return False
        self._last_liveness = now
        if self.healthy():
            self._unhealthy_since = None
            return False
        self._unhealthy_since = self._unhealthy_since if self._unhealthy_since is not None else now
        if now - self._unhealthy_since < self.unhealthy_after_seconds:
            return False
        log.warning("vLLM (pid %s) alive but unhealthy for %.0fs; killing it to restart", proc.pid,
                    now - self._unhealthy_since)
        self._unhealthy_since = None
        self._kill(proc)
        return True

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines the current child wrote (stdout and stderr share the log file)."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                data = f.read()
        except OSError as err:
            return f"(no log: {err})"
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _terminate_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the whole group (vLLM's engine core is a grandchild), SIGKILL whatever is left."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("vLLM pid %d ignored SIGTERM for %gs; sending SIGKILL", proc.pid, timeout)
    _signal_group(proc.pid, signal.SIGKILL)  # stragglers of the group, if any
    proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
