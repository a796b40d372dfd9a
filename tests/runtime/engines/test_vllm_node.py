"""A node that translates with vLLM: planned, started before the agent, used, stopped — with the
stand-in server in place of `vllm` (the flags it gets are the real ones)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.config import Settings
from runtime.engines.factory import open_transcriber, open_translator
from runtime.engines.vllm_node import build_supervisor, node_plan
from runtime.errors import ConfigError
from runtime.jobs import assemble, job_status, submit
from runtime.models import ModelCache, publish, pull_from_store
from runtime.node import Node
from runtime.queue import open_queue
from runtime.queue.base import WorkQueue
from runtime.records import read_usage
from runtime.store import open_store
from runtime.store.base import ObjectStore
from runtime.work import TaskOptions
from tests.conftest import DEMO_SAMPLE
from tests.support.azurite import free_port

LLM = "Qwen/Qwen3-8B-AWQ"


def vllm_settings(settings: Settings, tmp_path: Path) -> Settings:
    return replace(settings, transcriber="simulated", simulated_speed=50, translator="vllm", translator_model=LLM,
                   vllm_url=f"http://127.0.0.1:{free_port()}/v1", model_cache_dir=tmp_path / "models",
                   vllm_command=f"{sys.executable} -m tests.support.vllm_standin")


def cached_llm_backends(settings: Settings, tmp_path: Path) -> tuple[WorkQueue, ObjectStore]:
    """The LLM published to the mirror and pulled into the node's cache, as `spotkit models` would."""
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "config.json").write_text('{"architectures": ["Qwen3ForCausalLM"]}')
    store = open_store(settings.store, env={})
    store.ensure()
    publish(store, LLM, weights)
    pull_from_store(store, LLM, ModelCache(settings.model_cache_dir))
    queue = open_queue(settings.queue, env={})
    queue.ensure()
    return queue, store


def test_plans_for_a_t4_and_refuses_what_does_not_fit(settings: Settings) -> None:
    gpu = replace(settings, device="cuda", model="large-v3", compute_type="int8_float16", batch_size=8,
                  translator_model=LLM)
    t4 = node_plan(gpu)
    assert t4.quantization == "awq" and t4.dtype == "half" and t4.max_model_len >= 8192
    with pytest.raises(ConfigError, match="do not fit"):
        node_plan(replace(gpu, translator_model="Qwen/Qwen3-8B"))
    with pytest.raises(ConfigError, match="no memory spec"):
        node_plan(replace(gpu, translator_model="mistral-7b"))


def test_model_must_be_in_the_cache(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="spotkit models pull Qwen/Qwen3-8B-AWQ"):
        build_supervisor(vllm_settings(settings, tmp_path))


def test_node_serves_translations_from_its_vllm(settings: Settings, tmp_path: Path) -> None:
    settings = vllm_settings(settings, tmp_path)
    queue, store = cached_llm_backends(settings, tmp_path)
    job = submit(DEMO_SAMPLE, queue, store, TaskOptions(), 10, translate=("ja",), translator_model=LLM).job
    node = Node(settings, queue, store, lambda: open_transcriber(settings), until_idle=True,
                translator=lambda: open_translator(settings))
    assert node.run() == 0
    status = job_status(store, job)
    assert status.complete and status.translated == {"ja": status.total}
    _, cues = assemble(store, job, "ja")
    assert cues and all(cue.text for cue in cues)
    translations = [r for r in read_usage(store) if r.task == "translate" and r.outcome == "done"]
    assert len(translations) == status.total
    assert all(r.engine == "vllm" and r.model == LLM and r.tokens_in > 0 and r.tokens_out > 0 for r in translations)
    assert (settings.home / "logs" / "vllm.log").is_file()


def test_drain_stops_vllm(settings: Settings, tmp_path: Path) -> None:
    import signal
    import threading
    import time

    settings = vllm_settings(settings, tmp_path)
    queue, store = cached_llm_backends(settings, tmp_path)
    node = Node(settings, queue, store, lambda: open_transcriber(settings),
                translator=lambda: open_translator(settings))
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(node.run()))
    runner.start()
    deadline = time.monotonic() + 30
    while node.supervisor is None or not node.supervisor.ready:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = node.supervisor.pid
    node.on_signal(signal.SIGTERM)  # the service manager stops the node: drain, then exit
    runner.join(30)
    assert codes == [0]
    assert node.supervisor.state == "stopped" and not still_the_standin(pid)


def still_the_standin(pid: int) -> bool:
    """Whether *pid* is still the vLLM stand-in. Not just whether /proc/PID exists: on a busy machine
    (pid_max 32768, thousands of short-lived server threads in the suite) a reaped pid can be reused
    by another thread or process within seconds."""
    try:
        return b"vllm_standin" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
