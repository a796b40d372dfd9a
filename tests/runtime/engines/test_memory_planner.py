"""The GPU split: numbers recomputed here from the formula, refusals, and invariants over many inputs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.engines.memory_planner import (
    GIB,
    LLM_OVERHEAD_GIB,
    QWEN3_8B_AWQ,
    QWEN3_8B_FP16,
    T4_TOTAL_GIB,
    WHISPER_LARGE_V3_FLOAT16,
    WHISPER_LARGE_V3_INT8_FLOAT16,
    WHISPER_RUNTIME_GIB,
    ModelSpec,
    PlanError,
    WhisperSpec,
    plan,
)
from runtime.errors import ConfigError


def test_kv_bytes_per_token_for_qwen3_8b() -> None:
    # 2 (K and V) x 36 layers x 8 KV heads x 128 head_dim x 2 bytes (fp16)
    assert QWEN3_8B_AWQ.kv_bytes_per_token() == 2 * 36 * 8 * 128 * 2 == 147_456
    assert QWEN3_8B_AWQ.kv_bytes_per_token() / 2**20 == pytest.approx(0.140625)


def test_weights() -> None:
    # AWQ: 6.95B non-embedding parameters at 4.25 bits, 1.25B (embedding + LM head) at 16 bits.
    assert QWEN3_8B_AWQ.weights_gib() == pytest.approx((6.95e9 * 4.25 / 8 + 1.25e9 * 2) / 2**30)
    assert QWEN3_8B_AWQ.weights_gib() == pytest.approx(5.767, abs=1e-3)
    # fp16: 8.2B x 2 bytes = 16.4 GB = 15.27 GiB, more than a whole T4.
    assert QWEN3_8B_FP16.weights_gib() * 2**30 == pytest.approx(16.4e9)
    assert QWEN3_8B_FP16.weights_gib() > T4_TOTAL_GIB


def test_large_v3_int8_and_qwen3_8b_awq_fit_a_t4() -> None:
    p = plan(T4_TOTAL_GIB, WHISPER_LARGE_V3_INT8_FLOAT16, 4, QWEN3_8B_AWQ, min_kv_tokens=8192)

    # The formula, step by step, independently of the module.
    whisper = 1.6 + 4 * 0.25 + 1.2                                    # weights + 4 items + runtime = 3.80 GiB
    weights = (6.95e9 * 4.25 / 8 + 1.25e9 * 2) / 2**30                # 5.767 GiB
    utilization = math.floor((14.75 - whisper) / 14.75 * 100) / 100   # 10.95 / 14.75 = 0.7423 -> 0.74
    kv = utilization * 14.75 - weights - 1.5                          # 10.915 - 5.767 - 1.5 = 3.648 GiB
    tokens = math.floor(kv * 2**30 / (2 * 36 * 8 * 128 * 2))          # 26,564 tokens
    max_len = min(32768, tokens) // 256 * 256                         # 26,368

    assert whisper == pytest.approx(3.8)
    assert (utilization, tokens, max_len) == (0.74, 26_564, 26_368)
    assert p.whisper_gib == pytest.approx(whisper)
    assert p.llm_weights_gib == pytest.approx(weights)
    assert p.llm_overhead_gib == LLM_OVERHEAD_GIB == 1.5
    assert p.gpu_memory_utilization == utilization
    assert p.kv_cache_gib == pytest.approx(kv)
    assert p.kv_cache_gib == pytest.approx(3.648, abs=1e-3)
    assert p.kv_tokens == tokens
    assert p.max_model_len == max_len
    assert (p.dtype, p.quantization) == ("half", "awq")
    assert "26564 tokens" in p.reason and "0.74" in p.reason
    assert p.used_gib <= T4_TOTAL_GIB


def test_float16_whisper_still_fits_with_a_smaller_kv_cache() -> None:
    p16 = plan(T4_TOTAL_GIB, WHISPER_LARGE_V3_FLOAT16, 4, QWEN3_8B_AWQ, min_kv_tokens=8192)
    p8 = plan(T4_TOTAL_GIB, WHISPER_LARGE_V3_INT8_FLOAT16, 4, QWEN3_8B_AWQ, min_kv_tokens=8192)
    assert p16.whisper_gib == pytest.approx(3.1 + 1.0 + WHISPER_RUNTIME_GIB)
    assert p16.gpu_memory_utilization < p8.gpu_memory_utilization
    assert 8192 <= p16.kv_tokens < p8.kv_tokens


def test_unquantized_8b_is_refused_naming_the_weights() -> None:
    with pytest.raises(PlanError, match=r"Qwen/Qwen3-8B weights \(15\.27 GiB\).*do not fit") as info:
        plan(T4_TOTAL_GIB, WHISPER_LARGE_V3_INT8_FLOAT16, 4, QWEN3_8B_FP16, min_kv_tokens=8192)
    assert isinstance(info.value, ConfigError)
    assert "14.75 GiB" in str(info.value) and "3.80 GiB" in str(info.value)


def test_too_few_kv_tokens_is_refused_with_the_numbers() -> None:
    with pytest.raises(PlanError, match=r"KV cache too small.*26564 tokens.*need at least 40000"):
        plan(T4_TOTAL_GIB, WHISPER_LARGE_V3_INT8_FLOAT16, 4, QWEN3_8B_AWQ, min_kv_tokens=40_000)


def test_max_model_len_is_capped_by_the_model_context() -> None:
    p = plan(40.0, WHISPER_LARGE_V3_INT8_FLOAT16, 4, QWEN3_8B_AWQ, min_kv_tokens=8192)
    assert p.kv_tokens > 32768
    assert p.max_model_len == 32768


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(PlanError, match="whisper_batch"):
        plan(T4_TOTAL_GIB, WHISPER_LARGE_V3_INT8_FLOAT16, 0, QWEN3_8B_AWQ, min_kv_tokens=8192)


@given(
    total=st.floats(min_value=4.0, max_value=200.0),
    whisper_weights=st.floats(min_value=0.0, max_value=8.0),
    per_item=st.floats(min_value=0.0, max_value=1.0),
    batch=st.integers(min_value=1, max_value=32),
    params=st.floats(min_value=0.1, max_value=80.0),
    bits=st.sampled_from([4.25, 8.0, 16.0]),
    layers=st.integers(min_value=1, max_value=96),
    kv_heads=st.integers(min_value=1, max_value=16),
    head_dim=st.sampled_from([64, 128, 256]),
    context=st.integers(min_value=256, max_value=131072),
    min_tokens=st.integers(min_value=1, max_value=65536),
    overhead=st.floats(min_value=0.0, max_value=4.0),
)
def test_a_plan_never_exceeds_the_gpu(total: float, whisper_weights: float, per_item: float, batch: int,
                                      params: float, bits: float, layers: int, kv_heads: int, head_dim: int,
                                      context: int, min_tokens: int, overhead: float) -> None:
    llm = ModelSpec("m", params, bits, layers, kv_heads, head_dim, context)
    whisper = WhisperSpec("w", whisper_weights, per_item)
    try:
        p = plan(total, whisper, batch, llm, min_tokens, overhead_gib=overhead)
    except PlanError:
        return
    assert p.used_gib <= total + 1e-9
    assert p.gpu_memory_utilization * total + p.whisper_gib <= total + 1e-9
    assert p.llm_weights_gib + p.llm_overhead_gib + p.kv_cache_gib <= p.gpu_memory_utilization * total + 1e-9
    assert 0 < p.gpu_memory_utilization <= 1 and round(p.gpu_memory_utilization, 2) == p.gpu_memory_utilization
    assert p.kv_tokens >= min_tokens
    assert p.kv_tokens * llm.kv_bytes_per_token() <= p.kv_cache_gib * GIB
    assert 256 <= p.max_model_len <= min(context, p.kv_tokens) and p.max_model_len % 256 == 0
