"""Benchmark: batch throughput with parallel slots, lmstrix.batch against a plain loop.

Run it from the repository root (or anywhere): ``python benchmarks/bench_batch.py``
(``--quick`` for a short run, ``--json`` for machine output). Standard library and
lmstrix only; openai-python is measured when it is importable.

The server is the simulator (``lmstrix.testing.FakeLMStudio``) with one model that has
4 parallel slots and a fixed cost per request: every prompt is a sum, answered with one
token, and the model spends ``LATENCY_S`` per generated token (``time_scale=1``: slept
for real), with no prompt-processing cost. So one request takes ``LATENCY_S`` plus the
HTTP round trip, and at most 4 run at once: the ideal batch rate is 4x the sequential one.

Measured, items per second over the same items (each on a fresh output file):

* sequential: a plain ``for`` loop of ``Client.chat`` (no output file);
* ``run_batch`` with 1, 2, 4 and 8 workers (writing and fsyncing the JSONL output);
* openai-python in a ``ThreadPoolExecutor`` of 4 threads, ``chat.completions.create``
  (``max_retries=0``), when it is installed.

Target (the summary prints PASS/MISS; the exit status is 0 either way): ``run_batch``
with 4 workers >= 0.9 x the ideal 4x of sequential, i.e. >= 3.6x.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import Target, emit_json, fmt_ratio, print_table, print_targets

from lmstrix import Client
from lmstrix.batch import run_batch
from lmstrix.testing import FakeLMStudio, SimModel

MODEL = "bench/fixed-latency"
LATENCY_S = 0.05
SLOTS = 4
TARGET_FRACTION = 0.9
WORKER_COUNTS = (1, 2, 4, 8)


def sim_model() -> SimModel:
    """4 slots, no prefill cost, ``LATENCY_S`` per (single) generated token."""
    return SimModel(
        key=MODEL,
        declared_context=4096,
        parallel=SLOTS,
        prefill_s_per_1k_tokens=0.0,
        decode_s_per_token=LATENCY_S,
    )


def make_items(count: int, offset: int) -> List[Dict[str, Any]]:
    """Prompts answered with one token (sums), with ids unique across the run."""
    return [{"id": offset + i, "prompt": f"What is {offset + i}+1?"} for i in range(count)]


def timed(action: Callable[[], Any], count: int) -> float:
    """Items per second for ``action`` over ``count`` items."""
    started = time.perf_counter()
    action()
    return count / (time.perf_counter() - started)


def bench_sequential(client: Client, items: List[Dict[str, Any]]) -> float:
    def loop() -> None:
        for item in items:
            client.chat(MODEL, item["prompt"])

    return timed(loop, len(items))


def bench_run_batch(
    client: Client, items: List[Dict[str, Any]], workers: int, folder: str
) -> float:
    output = os.path.join(folder, f"out-{workers}.jsonl")

    def run() -> None:
        summary = run_batch(items, client, MODEL, output=output, workers=workers)
        if summary.failed or summary.done != len(items):
            raise RuntimeError(f"run_batch({workers} workers) did not finish cleanly: {summary}")

    return timed(run, len(items))


def bench_openai(base_url: str, items: List[Dict[str, Any]]) -> Optional[float]:
    try:
        import openai
    except ImportError:
        return None
    api = openai.OpenAI(base_url=base_url + "/v1", api_key="lm-studio", max_retries=0)

    def one(item: Dict[str, Any]) -> str:
        reply = api.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": item["prompt"]}]
        )
        return reply.choices[0].message.content or ""

    one(items[0])  # warm-up: imports, first connection

    def pool() -> None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=SLOTS) as executor:
            list(executor.map(one, items))

    try:
        return timed(pool, len(items))
    finally:
        api.close()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer items (for CI)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--items", type=int, default=0, help="items per measurement")
    args = parser.parse_args(argv)
    count = args.items or (32 if args.quick else 120)

    rates: Dict[str, Optional[float]] = {}
    max_in_flight: Dict[str, int] = {}
    with FakeLMStudio(models=[sim_model()], time_scale=1.0) as sim, tempfile.TemporaryDirectory(
        prefix="lmstrix-bench-batch-"
    ) as folder:
        sim.preload(MODEL)
        with Client(sim.base_url, max_retries=0) as client:
            client.chat(MODEL, "What is 1+1?")  # warm-up: detection, first connection
            offset = 0
            rates["sequential"] = bench_sequential(client, make_items(count, offset))
            for workers in WORKER_COUNTS:
                offset += count
                sim.reset_counters()
                name = f"run_batch, {workers} worker{'s' if workers > 1 else ''}"
                rates[name] = bench_run_batch(client, make_items(count, offset), workers, folder)
                max_in_flight[name] = sim.counters.max_in_flight.get(MODEL, 0)
        offset += count
        rates["openai-python, 4 threads"] = bench_openai(sim.base_url, make_items(count, offset))

    sequential = rates["sequential"] or 0.0
    four = rates["run_batch, 4 workers"]
    speedup = four / sequential if four and sequential else None
    ideal = float(SLOTS)
    target = Target("run_batch 4 workers / sequential", speedup, ">=", TARGET_FRACTION * ideal, "x")
    if args.json:
        emit_json(
            {
                "benchmark": "bench_batch",
                "items": count,
                "latency_s": LATENCY_S,
                "slots": SLOTS,
                "items_per_second": {
                    k: None if v is None else round(v, 3) for k, v in rates.items()
                },
                "speedup_4_workers": None if speedup is None else round(speedup, 3),
                "ideal_speedup": ideal,
                "fraction_of_ideal": None if speedup is None else round(speedup / ideal, 3),
                "targets": [target.to_dict()],
            }
        )
        return 0
    print(
        f"{count} items per run; simulated model with {SLOTS} parallel slots and "
        f"{LATENCY_S * 1000:.0f} ms per request\n"
    )
    rows = []
    for name, rate in rates.items():
        ratio = rate / sequential if rate and sequential else None
        note = "not installed" if rate is None else ""
        if name in max_in_flight:
            note = f"{max_in_flight[name]} in flight at most"
        rows.append([name, rate, fmt_ratio(ratio), note])
    print_table(["client", "items/s", "vs sequential", "note"], rows, title="Throughput")
    if speedup is not None:
        print(
            f"4 workers: {speedup:.2f}x sequential, {speedup / ideal:.0%} of the ideal "
            f"{ideal:.0f}x\n"
        )
    print_targets([target])
    return 0


if __name__ == "__main__":
    sys.exit(main())
