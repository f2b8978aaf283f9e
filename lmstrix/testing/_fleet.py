"""Ready-made sets of simulated models: a small demo fleet and a varied test fleet."""

from __future__ import annotations

from typing import List

from ._models import SimModel

__all__ = ["demo_fleet", "test_fleet"]


def demo_fleet() -> List[SimModel]:
    """Five varied chat models and one embedding model, quick to search (used by ``demo``)."""
    return [
        SimModel(
            "lmstrix-demo/tiny-chat-1b",
            32768,
            27_913,
            19_340,
            params_string="1B",
            description="Refused (insufficient resources) above 27,913 tokens.",
        ),
        SimModel(
            "lmstrix-demo/qwen-like-4b",
            131072,
            49_931,
            37_002,
            architecture="qwen3",
            params_string="4B",
            trained_for_tool_use=True,
            auto_fit=True,
            description="Auto-fits loads above 49,931 tokens to a smaller context.",
        ),
        SimModel(
            "lmstrix-demo/crashy-7b",
            65536,
            23_118,
            16_777,
            params_string="7B",
            crash_on_overload=True,
            description="The engine crashes on loads above 23,118 tokens.",
        ),
        SimModel(
            "lmstrix-demo/solid-3b",
            16384,
            params_string="3B",
            description="Works at its full declared context.",
        ),
        SimModel(
            "lmstrix-demo/noisy-2b",
            32768,
            32768,
            12_345,
            params_string="2B",
            noise=0.3,
            description="Answers unreliably just below its working limit.",
        ),
        SimModel(
            "lmstrix-demo/nomic-embed-text",
            2048,
            type="embedding",
            architecture="nomic-bert",
            quantization="Q4_0",
        ),
    ]


def test_fleet() -> List[SimModel]:
    """Twenty-odd models with varied hidden limits, for table-driven tests of the search."""
    return [
        # Everything works up to the declared context: the search's happy path.
        SimModel("sim/plain-8k", 8192, description="loadable == working == declared"),
        # Non-round limits far below the declared context.
        SimModel("sim/nonround-37k", 65536, 37_311, 20_005),
        # Auto-fit: loads above 33,000 succeed but apply 32,768 (largest multiple of 256).
        SimModel("sim/autofit-32k", 131072, 33_000, 30_001, auto_fit=True),
        # Auto-fit with a small, non-round loadable limit (applies 9,984).
        SimModel("sim/autofit-small", 32768, 9_999, 6_500, auto_fit=True),
        # Crash (500 model_load_failed) instead of the guardrail refusal above 24,321.
        SimModel("sim/crash-24k", 131072, 24_321, 18_000, crash_on_overload=True),
        # Crashes only at the very top: loadable is declared minus one.
        SimModel("sim/crash-tight", 16384, 16_383, 16_383, crash_on_overload=True),
        # Answers the probe wrong at every size: the search must report "failed".
        SimModel("sim/broken-16k", 16384, broken=True),
        # Declares less than the default min_context of 2048.
        SimModel("sim/tiny-declared-1k", 1024, default_context=1024),
        # Declares a non-round size just under 2048.
        SimModel("sim/tiny-declared-2000", 2000, 2000, 1_900),
        # Working limit below 2048: below the smallest load size the search tries.
        SimModel("sim/working-below-2k", 32768, 32768, 1_500),
        # Working limit equal to the loadable limit.
        SimModel("sim/working-eq-loadable", 65536, 40_960, 40_960),
        # Loadable equals declared, working below it.
        SimModel("sim/loadable-eq-declared", 24576, 24576, 17_777),
        # Silently truncates prompts longer than the loaded context (usage shows the cut).
        SimModel("sim/truncating-20k", 32768, 20_000, 20_000, truncates=True),
        # Truncates, and its working limit is lower than its loadable limit.
        SimModel("sim/truncating-low-working", 32768, 32768, 12_000, truncates=True),
        # Coin-flip answers in the top 15% below the working limit.
        SimModel("sim/noisy-half", 32768, 32768, 16_000, noise=0.5),
        # Noise over a wide band (the top 40% below the working limit).
        SimModel("sim/noisy-wide-band", 32768, 32768, 10_000, noise=0.5, noise_band=0.4),
        # Occasional wrong answers near the limit.
        SimModel("sim/noisy-light", 16384, 16384, 9_000, noise=0.1),
        # A large model: 128k declared and loadable, working below it.
        SimModel("sim/big-128k", 131072, 131072, 98_765),
        # A denser tokenizer (3 characters per token): calibration matters.
        SimModel("sim/dense-tokens", 32768, 30_000, 11_111, chars_per_token=3.0),
        # A sparse tokenizer and a heavy chat template.
        SimModel(
            "sim/sparse-tokens",
            32768,
            28_000,
            14_000,
            chars_per_token=5.2,
            template_overhead_tokens=64,
        ),
        # One request at a time (parallel = 1).
        SimModel("sim/serial", 8192, parallel=1),
        # The default (JIT) load size is above the loadable limit: JIT loads are refused.
        SimModel("sim/jit-refused", 32768, 6_000, 5_000, default_context=8192),
        # Limits just around the default min_context.
        SimModel("sim/edge-2049", 8192, 2_049, 2_047),
        # Expensive loads, for cost assertions.
        SimModel("sim/slow-load", 16384, 12_000, 8_000, load_base_s=30.0, load_s_per_1k_ctx=2.0),
        # A key with a quantization suffix ("@") that clients must percent-encode.
        SimModel("sim/variant@q8_0", 8192, 6_144, 4_321, quantization="Q8_0", bits_per_weight=8.0),
        # An embedding model.
        SimModel("sim/embed-768", 2048, type="embedding", architecture="nomic-bert"),
    ]


# Keep pytest from collecting ``test_fleet`` as a test when a test module imports it.
setattr(test_fleet, "__test__", False)  # noqa: B010
