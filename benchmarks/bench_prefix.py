"""Benchmark: prompt processing of a templated batch with prefix ordering against without.

Run it from the repository root (or anywhere): ``python benchmarks/bench_prefix.py``
(``--quick`` for a short run, ``--json`` for machine output). Standard library and
lmstrix only.

The server is the simulator (``lmstrix.testing.FakeLMStudio``) with its prompt-cache cost
model: an instance keeps the prompt it processed last and charges prompt processing
(``prefill_s_per_1k_tokens``) only for the tokens after the longest common prefix with
it. The simulator keeps one cached prompt per instance, shared by its parallel slots
(whichever slot processed last), where LM Studio's llama.cpp engine keeps one per slot;
so requests running side by side on different prefixes evict each other's prefix here.

The batch: questions about a few long documents, one template
(``{{doc}}\\n\\nQuestion: {{question}}``), the documents taking turns in the input (as a
file of questions gathered from several places would). Both runs use the same items, the
same client and the same workers (the model's parallel slots, then one worker); only
``order`` differs:

* ``order="input"``: items run as they come, each prompt starts with another document;
* ``order="prefix"``: items sorted by their rendered prompt, contiguous runs per worker.

Measured from the simulator's counters, not wall-clock: prompt tokens sent, prompt tokens
processed (not served from the cache), and the simulated prompt-processing seconds
(processed tokens times the model's rate), which is what the time to first token is made
of on a real server. Target (PASS/MISS; the exit status is 0 either way): prompt seconds
with ordering <= 0.5 x without.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import Target, emit_json, fmt_ratio, print_table, print_targets

from lmstrix import Client
from lmstrix.batch import run_batch
from lmstrix.testing import FakeLMStudio, SimModel

MODEL = "bench/prefix-cache"
SLOTS = 4
CONTEXT = 32768
PREFILL_S_PER_1K = 0.4
TEMPLATE = "{{doc}}\n\nQuestion: {{question}}"
TARGET_RATIO = 0.5


def sim_model() -> SimModel:
    """A 32K model with ``SLOTS`` parallel slots and the default prompt-processing rate."""
    return SimModel(
        key=MODEL,
        declared_context=CONTEXT,
        parallel=SLOTS,
        prefill_s_per_1k_tokens=PREFILL_S_PER_1K,
        decode_s_per_token=0.0,
    )


def make_items(docs: int, questions: int, words: int) -> List[Dict[str, Any]]:
    """``questions`` questions about each of ``docs`` documents, the documents taking turns."""
    texts = [" ".join(f"doc{d}-w{i}" for i in range(words)) for d in range(docs)]
    return [
        {"id": f"d{n % docs}-q{n // docs}", "doc": texts[n % docs], "question": f"what is {n}?"}
        for n in range(docs * questions)
    ]


def measure(
    sim: FakeLMStudio,
    client: Client,
    items: List[Dict[str, Any]],
    order: str,
    workers: int,
    folder: str,
) -> Dict[str, Any]:
    """One run of the batch in ``order``; the simulator's prompt counters for it."""
    sim.reset_counters()
    summary = run_batch(
        items,
        client,
        MODEL,
        output=os.path.join(folder, f"{order}-{workers}.jsonl"),
        template=TEMPLATE,
        order=order,
        workers=workers,
        params={"max_tokens": 4},
    )
    counters = sim.counters
    return {
        "items": summary.done,
        "failed": summary.failed,
        "prompt_tokens": counters.prompt_tokens,
        "processed_tokens": counters.processed_tokens,
        "prompt_seconds": counters.processed_tokens * PREFILL_S_PER_1K / 1000.0,
        "prefix_share": summary.prefix_share,
        "input_prefix_share": summary.input_prefix_share,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller batch (for CI)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    docs, questions, words = (3, 8, 1000) if args.quick else (5, 20, 3000)
    items = make_items(docs, questions, words)
    runs: Dict[str, Dict[str, Any]] = {}
    with FakeLMStudio(models=[sim_model()]) as sim, tempfile.TemporaryDirectory(
        prefix="lmstrix-bench-prefix-"
    ) as folder:
        sim.preload(MODEL, CONTEXT)
        with Client(sim.base_url, max_retries=0) as client:
            for workers in (SLOTS, 1):
                for order in ("input", "prefix"):
                    name = f"{order}, {workers} worker{'s' if workers > 1 else ''}"
                    runs[name] = measure(sim, client, items, order, workers, folder)
    failed = sum(run["failed"] for run in runs.values())
    if failed:  # an overflow is not processed: the figures would mean nothing
        print(f"bench_prefix: {failed} items failed", file=sys.stderr)
        return 1
    before = runs[f"input, {SLOTS} workers"]["prompt_seconds"]
    after = runs[f"prefix, {SLOTS} workers"]["prompt_seconds"]
    ratio = after / before if before else None
    target = Target(
        f"prompt seconds, prefix / input, {SLOTS} workers", ratio, "<=", TARGET_RATIO, "x"
    )
    if args.json:
        emit_json(
            {
                "benchmark": "bench_prefix",
                "documents": docs,
                "questions_per_document": questions,
                "words_per_document": words,
                "slots": SLOTS,
                "runs": runs,
                "ratio": None if ratio is None else round(ratio, 4),
                "targets": [target.to_dict()],
            }
        )
        return 0
    print(
        f"{len(items)} items: {questions} questions about each of {docs} documents of "
        f"{words} words, interleaved; {SLOTS} slots\n"
    )
    rows = [
        [
            order,
            run["prompt_tokens"],
            run["processed_tokens"],
            run["prompt_seconds"],
            fmt_ratio(run["prompt_seconds"] / before if before else None),
        ]
        for order, run in runs.items()
    ]
    print_table(
        ["run", "prompt tokens", "processed", "prompt s (simulated)", "vs input"],
        rows,
        title="Prompt processing",
    )
    prefix = runs[f"prefix, {SLOTS} workers"]
    print(
        f"the summary's estimate: {prefix['prefix_share'] or 0.0:.0%} of prompt text repeats "
        f"the previous prompt's head in prefix order ({prefix['input_prefix_share'] or 0.0:.0%}"
        " in input order); with several workers the simulator's one cached prompt per "
        "instance is shared by the slots, so runs on other documents evict it\n"
    )
    print_targets([target])
    return 0


if __name__ == "__main__":
    sys.exit(main())
