"""How a node runs vLLM next to faster-whisper: plan the T4's memory for the pair, then supervise
``vllm serve`` with that plan. The agent's translator (``SPOTKIT_TRANSLATOR=vllm``) talks to it."""

from __future__ import annotations

import shlex
from pathlib import Path
from urllib.parse import urlsplit

from runtime.config import Settings
from runtime.engines.memory_planner import (
    QWEN3_8B_AWQ,
    QWEN3_8B_FP16,
    WHISPER_LARGE_V3_FLOAT16,
    WHISPER_LARGE_V3_INT8_FLOAT16,
    MemoryPlan,
    ModelSpec,
    PlanError,
    WhisperSpec,
    plan,
)
from runtime.engines.vllm_supervisor import VllmSupervisor
from runtime.errors import ConfigError
from runtime.models import ModelCache

LLMS: dict[str, ModelSpec] = {spec.name: spec for spec in (QWEN3_8B_AWQ, QWEN3_8B_FP16)}
WHISPERS: dict[tuple[str, str], WhisperSpec] = {
    ("large-v3", "int8_float16"): WHISPER_LARGE_V3_INT8_FLOAT16,
    ("large-v3", "float16"): WHISPER_LARGE_V3_FLOAT16,
}
CPU_WHISPER = WhisperSpec("whisper on the CPU", weights_gib=0.0, working_gib_per_batch_item=0.0)


def node_plan(settings: Settings, gpu_total_gib: float = 14.75, min_kv_tokens: int = 8192) -> MemoryPlan:
    llm = LLMS.get(settings.translator_model)
    if llm is None:
        raise ConfigError(f"translator_model = {settings.translator_model!r} has no memory spec; known: "
                          f"{', '.join(LLMS)} (runtime/engines/memory_planner.py)")
    if settings.device == "cpu":
        return plan(gpu_total_gib, CPU_WHISPER, 1, llm, min_kv_tokens, whisper_runtime_gib=0.0)
    whisper = WHISPERS.get((settings.model, settings.compute_type))
    if whisper is None:
        raise PlanError(f"no memory spec for whisper {settings.model} at {settings.compute_type}; known: "
                        f"{', '.join('/'.join(k) for k in WHISPERS)}")
    return plan(gpu_total_gib, whisper, settings.batch_size, llm, min_kv_tokens)


def build_supervisor(settings: Settings) -> VllmSupervisor:
    """The supervisor for this node: model from the node's cache, port from ``vllm_url``."""
    port = urlsplit(settings.vllm_url).port or 8000
    cache = ModelCache(settings.model_cache_dir)
    if not cache.is_complete(settings.translator_model):
        raise ConfigError(f"{settings.translator_model} is not in the model cache {cache.root}; run "
                          f"`spotkit models pull {settings.translator_model}` (the node never downloads at serve time)")
    command = shlex.split(settings.vllm_command) if settings.vllm_command else None
    return VllmSupervisor(settings.translator_model, cache.path(settings.translator_model), port,
                          node_plan(settings), hf_home=Path(settings.model_cache_dir),
                          log_path=settings.home / "logs" / "vllm.log", command=command)
