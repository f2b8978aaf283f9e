"""A fleet derived from a machine: typical LM Studio models and a memory budget.

Where :func:`~lmstrix.testing.test_fleet` collects edge cases, this fleet is meant to
look like a real library on a real machine, for benchmarks: each model's loadable
limit follows from its weights and its KV cache size per token (layers x KV heads x
head size x 2 x 2 bytes at fp16) against the memory budget, and its working limit
from the context it was really trained to use (long-context extensions and small
models degrade well below what they declare). The architecture figures are the
published ones; the effective contexts are rough, public-benchmark-style estimates.
"""

from __future__ import annotations

from typing import List, Tuple

from ._models import SimModel

__all__ = ["machine_fleet"]

_GIB = 1 << 30
_RUNTIME_OVERHEAD_BYTES = _GIB // 2  # compute buffers, runtime

# key, params (B), weights (GB at ~Q4_K_M), declared context, layers, KV heads,
# head size, effective context (where answers stay right), load behaviour
_MODELS: Tuple[Tuple[str, float, float, int, int, int, int, int, str], ...] = (
    ("meta-llama/llama-3.2-1b-instruct", 1.2, 0.8, 131072, 16, 8, 64, 32768, "refuse"),
    ("meta-llama/llama-3.2-3b-instruct", 3.2, 2.0, 131072, 28, 8, 128, 65536, "refuse"),
    ("meta-llama/llama-3.1-8b-instruct", 8.0, 4.9, 131072, 32, 8, 128, 65536, "refuse"),
    ("qwen/qwen3-4b-2507", 4.0, 2.5, 262144, 36, 8, 128, 131072, "refuse"),
    ("qwen/qwen3-8b", 8.2, 5.0, 40960, 36, 8, 128, 32768, "refuse"),
    ("qwen/qwen2.5-14b-instruct", 14.8, 9.0, 32768, 48, 8, 128, 32768, "refuse"),
    ("qwen/qwen2.5-coder-7b-instruct", 7.6, 4.7, 32768, 28, 4, 128, 32768, "refuse"),
    ("deepseek/deepseek-r1-distill-qwen-7b", 7.6, 4.7, 131072, 28, 4, 128, 32768, "refuse"),
    ("google/gemma-3-4b-it", 4.3, 2.5, 131072, 34, 4, 256, 65536, "auto_fit"),
    ("google/gemma-3-12b-it", 12.2, 7.3, 131072, 48, 8, 256, 65536, "auto_fit"),
    ("mistralai/mistral-7b-instruct-v0.3", 7.2, 4.4, 32768, 32, 8, 128, 16384, "refuse"),
    ("mistralai/mistral-nemo-instruct-2407", 12.2, 7.1, 131072, 40, 8, 128, 16384, "crash"),
    ("mistralai/mistral-small-24b-instruct", 23.6, 14.3, 32768, 40, 8, 128, 32768, "crash"),
    ("microsoft/phi-4-mini-instruct", 3.8, 2.5, 131072, 32, 8, 128, 32768, "refuse"),
    ("microsoft/phi-4", 14.7, 9.1, 16384, 40, 10, 128, 16384, "refuse"),
    ("openai/gpt-oss-20b", 20.9, 12.1, 131072, 24, 8, 64, 131072, "refuse"),
    ("ibm/granite-3.1-8b-instruct", 8.2, 5.0, 131072, 40, 8, 128, 65536, "refuse"),
    ("huggingfacetb/smollm2-1.7b-instruct", 1.7, 1.1, 8192, 24, 32, 64, 8192, "refuse"),
)


def machine_fleet(memory_gib: float = 16.0) -> List[SimModel]:
    """About 18 typical models as they behave with ``memory_gib`` for weights and cache.

    Models whose weights do not fit at all are left out.
    """
    budget = int(memory_gib * _GIB) - _RUNTIME_OVERHEAD_BYTES
    fleet: List[SimModel] = []
    for key, params, weights_gb, declared, layers, kv_heads, head, effective, kind in _MODELS:
        kv_per_token = 2 * layers * kv_heads * head * 2
        room = budget - int(weights_gb * 1e9)
        loadable = max(0, min(declared, room // kv_per_token))
        if loadable < 512:
            continue  # does not fit this machine at all; not part of its library
        fleet.append(
            SimModel(
                key,
                declared,
                loadable,
                max(256, min(effective, loadable)),
                size_bytes=int(weights_gb * 1e9),
                params_string=f"{params:g}B",
                auto_fit=kind == "auto_fit",
                crash_on_overload=kind == "crash",
                description=f"{weights_gb:g} GB of weights, {kv_per_token // 1024} KiB of KV "
                f"cache per token: loads up to {loadable:,} of {declared:,} tokens "
                f"with {memory_gib:g} GiB",
            )
        )
    return fleet
