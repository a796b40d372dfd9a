"""Split one GPU between faster-whisper and vLLM, before either is started.

vLLM takes a *fraction of the whole GPU* (``--gpu-memory-utilization``) and fills whatever its weights
and activations leave with KV cache; it does not know that faster-whisper shares the card. If the
fraction is too large, whichever process loads second dies with an out-of-memory error; if
``--max-model-len`` is larger than the KV cache it can hold, vLLM refuses to start. So the split is
decided here, as arithmetic on stated numbers, and both flags come from the same plan.

Everything is a pure function of its arguments. The defaults below are named, documented
*estimates*, not measurements: none of them was checked on a T4 (see docs/engines.md).

T4 facts the plan relies on: compute capability 7.5, so no bfloat16 (vLLM needs ``--dtype half``),
AWQ kernels work, FlashAttention-2 and the Marlin AWQ kernels (sm80+) do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from runtime.errors import ConfigError

GIB = 2**30

T4_TOTAL_GIB = 14.75
"""Total T4 memory *as CUDA reports it*, which is what vLLM multiplies its fraction by.

A T4 is sold as 16 GB; with ECC on (Azure's default) ``deviceQuery`` reports 15,843,721,216 bytes
(14.76 GiB) and nvidia-smi 15360 MiB. Rounded down to 14.75 so the fraction never buys more than
planned. Per-process CUDA contexts are not subtracted here; they are in the two overheads below.
Pass the measured ``torch.cuda.mem_get_info()[1] / GIB`` when you have it.
"""

LLM_OVERHEAD_GIB = 1.5
"""vLLM's share beyond weights and KV: its CUDA context (~0.4 GiB), the activation peak it profiles
at start-up for a chunked-prefill batch, the sampler's logits buffer (vocab 151,936 × batch) and
CUDA graphs. An estimate; ``--enforce-eager`` would drop the graphs."""

WHISPER_RUNTIME_GIB = 1.2
"""faster-whisper's fixed cost beyond weights and per-item buffers: the agent process's CUDA
context, cuBLAS workspace and CTranslate2's caching allocator. Basis: faster-whisper's README
(large-v2, same size as large-v3): int8 beam 5 batch 1 uses 2926 MiB; minus 1.44 GiB of int8
weights and one item's buffers leaves ~1.1 GiB; the fp16 row leaves ~1.3 GiB."""

KV_ELEMENT_BYTES_FP16 = 2
AWQ_MAX_BITS = 4.5
MAX_MODEL_LEN_MULTIPLE = 256


class PlanError(ConfigError):
    """The models do not fit the GPU as asked; the message carries the numbers."""


@dataclass(frozen=True)
class ModelSpec:
    """An LLM's memory-relevant shape. ``full_precision_parameters_billion`` are parameters a
    quantized checkpoint keeps at 16 bits (AWQ leaves the embedding and the LM head unquantized)."""

    name: str
    parameters_billion: float
    bits_per_weight: float
    num_layers: int
    num_kv_heads: int
    head_dim: int
    max_context: int
    full_precision_parameters_billion: float = 0.0

    def weights_gib(self) -> float:
        quantized = (self.parameters_billion - self.full_precision_parameters_billion) * 1e9
        full = self.full_precision_parameters_billion * 1e9
        return (quantized * self.bits_per_weight / 8 + full * 2) / GIB

    def kv_bytes_per_token(self, element_bytes: int = KV_ELEMENT_BYTES_FP16) -> int:
        """K and V, for every layer and KV head: 2 × layers × kv_heads × head_dim × bytes."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * element_bytes


@dataclass(frozen=True)
class WhisperSpec:
    """faster-whisper's memory: weights plus buffers that grow with the batch size."""

    name: str
    weights_gib: float
    working_gib_per_batch_item: float


# Qwen3-8B (public config.json): hidden 4096, 36 layers, 32 attention heads, 8 KV heads, head_dim 128,
# native context 32,768; 8.2B parameters of which 6.95B are non-embedding (model card), so 1.25B sit in
# the untied embedding and LM head (2 × 151,936 × 4096).
QWEN3_8B_AWQ = ModelSpec(
    name="Qwen/Qwen3-8B-AWQ", parameters_billion=8.2, bits_per_weight=4.25,  # int4 + group-128 scales/zeros
    num_layers=36, num_kv_heads=8, head_dim=128, max_context=32768, full_precision_parameters_billion=1.25,
)
QWEN3_8B_FP16 = ModelSpec(
    name="Qwen/Qwen3-8B", parameters_billion=8.2, bits_per_weight=16,
    num_layers=36, num_kv_heads=8, head_dim=128, max_context=32768,
)

# Whisper large-v3 has ~1.55B parameters: 1.44 GiB at int8, 2.89 GiB at fp16; both rounded up for the
# layers CTranslate2 keeps in fp16 (convolutions, norms) and allocator rounding. Per batch item: the
# README's batched rows add ~225 MiB per extra item (beam 5 decoder KV + cross-attention KV);
# rounded up to 0.25 GiB. Activations are fp16 in both compute types, so the per-item cost is the same.
WHISPER_LARGE_V3_INT8_FLOAT16 = WhisperSpec("large-v3/int8_float16", weights_gib=1.6, working_gib_per_batch_item=0.25)
WHISPER_LARGE_V3_FLOAT16 = WhisperSpec("large-v3/float16", weights_gib=3.1, working_gib_per_batch_item=0.25)


@dataclass(frozen=True)
class MemoryPlan:
    """What each process gets, in GiB, and the vLLM flags that enforce it."""

    gpu_total_gib: float
    whisper_gib: float
    llm_weights_gib: float
    llm_overhead_gib: float
    kv_cache_gib: float
    kv_tokens: int
    max_model_len: int
    gpu_memory_utilization: float
    dtype: str
    quantization: str | None
    reason: str

    @property
    def used_gib(self) -> float:
        return self.whisper_gib + self.llm_weights_gib + self.llm_overhead_gib + self.kv_cache_gib


def _floor2(x: float) -> float:
    return math.floor(x * 100) / 100


def plan(
    gpu_total_gib: float,
    whisper: WhisperSpec,
    whisper_batch: int,
    llm: ModelSpec,
    min_kv_tokens: int,
    overhead_gib: float = LLM_OVERHEAD_GIB,
    whisper_runtime_gib: float = WHISPER_RUNTIME_GIB,
    kv_element_bytes: int = KV_ELEMENT_BYTES_FP16,
) -> MemoryPlan:
    """Give whisper its share first, vLLM a fraction of the rest, and KV cache what vLLM has left.

    The fraction is rounded *down* to two decimals (it is what vLLM is told) and the KV budget is
    computed from the rounded fraction, so what vLLM actually gets matches the plan.
    Raises `PlanError` when the weights do not fit or the KV cache buys fewer than ``min_kv_tokens``.
    """
    if gpu_total_gib <= 0 or whisper_batch < 1 or min_kv_tokens < 1 or min(overhead_gib, whisper_runtime_gib) < 0:
        raise PlanError(f"bad plan inputs: gpu_total_gib={gpu_total_gib} (> 0), whisper_batch={whisper_batch} (>= 1), "
                        f"min_kv_tokens={min_kv_tokens} (>= 1), overhead_gib={overhead_gib}, "
                        f"whisper_runtime_gib={whisper_runtime_gib} (>= 0)")
    whisper_gib = whisper.weights_gib + whisper_batch * whisper.working_gib_per_batch_item + whisper_runtime_gib
    weights_gib = llm.weights_gib()
    left_for_llm = gpu_total_gib - whisper_gib
    if weights_gib + overhead_gib > left_for_llm:
        raise PlanError(
            f"{llm.name} weights ({weights_gib:.2f} GiB) plus vLLM overhead ({overhead_gib:.2f} GiB) do not fit: "
            f"{gpu_total_gib:.2f} GiB GPU minus whisper {whisper.name} x{whisper_batch} ({whisper_gib:.2f} GiB) "
            f"leaves {left_for_llm:.2f} GiB; use a quantized model or a smaller whisper batch")
    utilization = _floor2(left_for_llm / gpu_total_gib)
    while utilization * gpu_total_gib + whisper_gib > gpu_total_gib:  # floating-point guard
        utilization = round(utilization - 0.01, 2)
    kv_gib = utilization * gpu_total_gib - weights_gib - overhead_gib
    per_token = llm.kv_bytes_per_token(kv_element_bytes)
    kv_tokens = max(0, math.floor(kv_gib * GIB / per_token))
    max_model_len = min(llm.max_context, kv_tokens) // MAX_MODEL_LEN_MULTIPLE * MAX_MODEL_LEN_MULTIPLE
    if kv_tokens < min_kv_tokens or max_model_len == 0:
        raise PlanError(
            f"KV cache too small for {llm.name}: {kv_gib:.2f} GiB buys {kv_tokens} tokens "
            f"({per_token} bytes/token), need at least {min_kv_tokens}; whisper {whisper_gib:.2f} GiB, "
            f"weights {weights_gib:.2f} GiB, overhead {overhead_gib:.2f} GiB of {gpu_total_gib:.2f} GiB")
    quantization = "awq" if llm.bits_per_weight <= AWQ_MAX_BITS else None
    reason = (
        f"{gpu_total_gib:.2f} GiB GPU: whisper {whisper.name} x{whisper_batch} {whisper_gib:.2f} GiB; "
        f"vLLM {utilization:.2f} of the GPU = {llm.name} weights {weights_gib:.2f} GiB + overhead "
        f"{overhead_gib:.2f} GiB + KV {kv_gib:.2f} GiB ({kv_tokens} tokens at {per_token / 2**20:.3f} MiB/token); "
        f"max_model_len {max_model_len}; dtype half (compute capability 7.5 has no bfloat16)")
    return MemoryPlan(
        gpu_total_gib=gpu_total_gib, whisper_gib=whisper_gib, llm_weights_gib=weights_gib,
        llm_overhead_gib=overhead_gib, kv_cache_gib=kv_gib, kv_tokens=kv_tokens, max_model_len=max_model_len,
        gpu_memory_utilization=utilization, dtype="half", quantization=quantization, reason=reason,
    )
