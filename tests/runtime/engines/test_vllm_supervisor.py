"""The vLLM supervisor against the stand-in server: the real command line, health, crash, stop."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.engines.memory_planner import QWEN3_8B_AWQ, T4_TOTAL_GIB, WHISPER_LARGE_V3_INT8_FLOAT16, plan
from runtime.engines.vllm_supervisor import (
    EngineState,
    RestartPolicy,
    VllmSupervisor,
    child_env,
    parse_metrics,
    vllm_serve_argv,
)
from runtime.errors import EngineError

REPO = Path(__file__).resolve().parents[3]
MODEL = "Qwen/Qwen3-8B-AWQ"
T4_PLAN = plan(T4_TOTAL_GIB, WHISPER_LARGE_V3_INT8_FLOAT16, 4, QWEN3_8B_AWQ, min_kv_tokens=8192)
FAST_BACKOFF = RestartPolicy(base_seconds=0.05, factor=2.0, max_seconds=1.0, max_restarts=2, window_seconds=60.0)


def test_serve_argv_for_the_t4_plan() -> None:
    argv = vllm_serve_argv(MODEL, Path("/mnt/data/models/qwen3-8b-awq"), 8000, T4_PLAN, Path("/mnt/data/hf"))
    assert argv == [
        "vllm", "serve", "/mnt/data/models/qwen3-8b-awq", "--served-model-name", "Qwen/Qwen3-8B-AWQ",
        "--dtype", "half", "--max-model-len", "26368", "--gpu-memory-utilization", "0.74",
        "--host", "127.0.0.1", "--port", "8000", "--download-dir", "/mnt/data/hf/hub", "--quantization", "awq",
    ]


def test_child_env_is_offline_on_the_persistent_cache() -> None:
    env = child_env({"PATH": "/usr/bin", "HF_HUB_OFFLINE": "0"}, Path("/mnt/data/hf"))
    assert env["PATH"] == "/usr/bin"
    assert env["HF_HOME"] == "/mnt/data/hf"
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"


def test_backoff_grows_caps_and_gives_up_within_the_window() -> None:
    policy = RestartPolicy(base_seconds=2, factor=3, max_seconds=30, max_restarts=2, window_seconds=100)
    assert [policy.delay(n) for n in range(5)] == [2, 6, 18, 30, 30]
    assert not policy.gives_up([10, 20], now=50)
    assert policy.gives_up([10, 20, 30], now=50)
    assert not policy.gives_up([10, 20, 30], now=115)  # the first crash has left the window


METRICS_PAGE = """\
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="m"} 100.0
vllm:prompt_tokens_total{engine="1",model_name="m"} 20.0
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="m"} 7.0
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 2.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 1.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.5
"""


def test_parse_metrics_by_current_names() -> None:
    m = parse_metrics(METRICS_PAGE)
    assert (m.prompt_tokens_total, m.generation_tokens_total) == (120.0, 7.0)
    assert (m.num_requests_running, m.num_requests_waiting, m.kv_cache_usage_perc) == (2.0, 1.0, 0.5)


def test_parse_metrics_refuses_the_removed_name() -> None:
    old = METRICS_PAGE.replace("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
    with pytest.raises(EngineError, match="lacks vllm:kv_cache_usage_perc"):
        parse_metrics(old)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


SupervisorFactory = Callable[..., VllmSupervisor]


@pytest.fixture
def make_supervisor(tmp_path: Path) -> Iterator[SupervisorFactory]:
    made: list[VllmSupervisor] = []

    def make(*flags: str, health_timeout: float = 10.0, backoff: RestartPolicy = FAST_BACKOFF) -> VllmSupervisor:
        sup = VllmSupervisor(
            MODEL, tmp_path / "models" / "qwen3-8b-awq", free_port(), T4_PLAN, hf_home=tmp_path / "hf",
            log_path=tmp_path / "vllm.log", command=[sys.executable, "-m", "tests.support.vllm_standin", *flags],
            health_timeout_seconds=health_timeout, restart_backoff=backoff, http_timeout_seconds=1.0,
            poll_interval_seconds=0.05, base_env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        made.append(sup)
        return sup

    yield make
    for sup in made:
        sup.stop(timeout=2.0)


def chat(sup: VllmSupervisor, text: str) -> dict[str, object]:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": text}]}).encode()
    request = urllib.request.Request(sup.base_url + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        reply: dict[str, object] = json.load(response)
    return reply


def test_clean_start_is_ready_and_reports_metrics(make_supervisor: SupervisorFactory) -> None:
    sup = make_supervisor("--startup-delay", "0.3")
    assert sup.state.value == "stopped"  # (not `is`: mypy would keep the narrowing past start())
    sup.start()
    assert sup.ready and sup.state is EngineState.READY
    reply = chat(sup, "three little words")
    assert reply["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    m = sup.metrics()
    assert (m.prompt_tokens_total, m.generation_tokens_total) == (3.0, 4.0)
    assert (m.num_requests_running, m.num_requests_waiting) == (0.0, 0.0)
    assert 0.0 < m.kv_cache_usage_perc <= 1.0
    log = sup.log_path.read_text()
    assert "--dtype half --max-model-len 26368 --gpu-memory-utilization 0.74" in log  # the real argv ran
    assert "hf_hub_offline=1" in log


def test_a_crash_is_restarted_with_backoff(make_supervisor: SupervisorFactory, tmp_path: Path) -> None:
    sup = make_supervisor("--crash-after", "0.5", "--crash-marker", str(tmp_path / "crashed-once"))
    sup.start()
    first_pid = sup.pid
    assert wait_for(lambda: sup.restarts == 1 and sup.ready, timeout=10.0), sup.state
    assert sup.pid != first_pid and sup.healthy()
    [record] = sup.restart_history
    assert (record.exit_code, record.delay_seconds) == (1, FAST_BACKOFF.delay(0))
    assert "simulated engine crash" in sup.log_path.read_text()


def test_a_hung_server_is_restarted(make_supervisor: SupervisorFactory, tmp_path: Path) -> None:
    sup = make_supervisor("--hang-after", "0.3", "--crash-marker", str(tmp_path / "hung-once"))
    sup.unhealthy_after_seconds, sup.liveness_interval_seconds = 0.5, 0.1
    sup.start()
    first_pid = sup.pid
    assert first_pid is not None
    assert wait_for(lambda: sup.restarts == 1 and sup.ready, timeout=15.0), sup.state
    assert sup.pid != first_pid and gone(first_pid) and sup.healthy()
    [record] = sup.restart_history
    assert record.exit_code is None  # it did not exit: the supervisor ended it


def test_a_crash_loop_gives_up(make_supervisor: SupervisorFactory) -> None:
    sup = make_supervisor("--crash-after", "0.4")
    sup.start()
    assert wait_for(lambda: sup.state is EngineState.FAILED, timeout=15.0), sup.state
    assert sup.restarts == 2  # max_restarts; the third crash in the window is final
    assert [r.delay_seconds for r in sup.restart_history] == [0.05, 0.1]
    assert not sup.ready and sup.pid is None


def test_never_healthy_fails_within_the_timeout(make_supervisor: SupervisorFactory) -> None:
    sup = make_supervisor("--never-healthy", health_timeout=1.5)
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"not healthy within 1\.5s(.|\n)*standin: starting"):
        sup.start()
    assert time.monotonic() - started < 1.5 + 2.0
    assert sup.state is EngineState.FAILED and sup.pid is None


def test_early_exit_is_a_clear_error_with_the_child_output(make_supervisor: SupervisorFactory) -> None:
    sup = make_supervisor("--fail-after", "0")
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"exited with code 3(.|\n)*simulated startup failure"):
        sup.start()
    assert time.monotonic() - started < 5.0
    assert sup.state is EngineState.FAILED


def test_stop_ends_the_process_and_is_idempotent(make_supervisor: SupervisorFactory) -> None:
    sup = make_supervisor()
    sup.start()
    pid = sup.pid
    assert pid is not None
    sup.stop(timeout=5.0)
    assert gone(pid) and sup.state is EngineState.STOPPED and not sup.healthy(timeout=0.5)
    sup.stop(timeout=5.0)
    assert sup.state is EngineState.STOPPED and sup.restarts == 0


def test_stop_escalates_to_sigkill(make_supervisor: SupervisorFactory) -> None:
    sup = make_supervisor("--ignore-sigterm")
    sup.start()
    pid = sup.pid
    assert pid is not None
    started = time.monotonic()
    sup.stop(timeout=0.5)
    assert gone(pid) and time.monotonic() - started < 3.0


def test_stop_during_start_interrupts_it(make_supervisor: SupervisorFactory) -> None:
    sup = make_supervisor("--never-healthy", health_timeout=30.0)
    errors: list[EngineError] = []

    def start() -> None:
        try:
            sup.start()
        except EngineError as err:
            errors.append(err)

    starter = threading.Thread(target=start)
    starter.start()
    assert wait_for(lambda: sup.pid is not None, timeout=5.0)
    pid = sup.pid
    assert pid is not None
    time.sleep(0.3)
    sup.stop(timeout=2.0)
    starter.join(timeout=5.0)
    assert not starter.is_alive() and "interrupted by stop()" in str(errors[0])
    assert gone(pid) and sup.state is EngineState.STOPPED


def test_start_twice_is_refused(make_supervisor: SupervisorFactory) -> None:
    sup = make_supervisor()
    sup.start()
    with pytest.raises(EngineError, match="already ready"):
        sup.start()
