"""Benchmark: a batch over a pool of 1, 2 and 4 simulated servers, against linear scaling.

Each server is the lmstrix simulator in its own child process (so servers do not share
the client's GIL) with one model loaded with 4 parallel slots, and a fixed latency per
chat request (a ``delay`` fault on every request: the server sleeps, then answers). The
batch runs with the pool's default workers (its total free slots). The ideal is linear:
N servers give N times the items per second of one. LiteLLM's Router, given the same
servers as deployments of one model, runs the same items in the same number of threads
when it is installed (``pip install litellm``); otherwise its row says so.

    python benchmarks/bench_pool.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence

from _common import ChildServer, Target, emit_json, print_table, print_targets

import lmstrix
from lmstrix.batch import run_batch

MODEL = "bench/pool-model"
SLOTS = 4
LATENCY_S = 0.1
TARGET_AT_4 = 0.9


def serve() -> None:
    """Child-process entry: one simulated server with a fixed latency per chat request."""
    from lmstrix.testing import FakeLMStudio, Fault, SimModel

    model = SimModel(MODEL, 8192, parallel=SLOTS)
    with FakeLMStudio([model]) as fake:
        fake.preload(MODEL)
        fake.inject(
            Fault(path="/v1/chat/completions", kind="delay", delay_s=LATENCY_S, times=10**9)
        )
        print(f"PORT {fake.port}", flush=True)
        sys.stdin.read()


def items(count: int) -> List[Dict[str, Any]]:
    return [{"id": i, "prompt": f"What is {i}+1?"} for i in range(count)]


def run_lmstrix(urls: Sequence[str], count: int) -> Dict[str, Any]:
    with lmstrix.Pool(list(urls), max_retries=0) as pool, tempfile.TemporaryDirectory() as tmp:
        workers = lmstrix.batch.default_workers(pool, MODEL)
        started = time.perf_counter()
        summary = run_batch(
            items(count),
            pool,
            MODEL,
            output=os.path.join(tmp, "out.jsonl"),
            params={"temperature": 0, "max_tokens": 8},
        )
        seconds = time.perf_counter() - started
    if summary.failed:
        raise RuntimeError(f"{summary.failed} items failed over {len(urls)} servers")
    return {"servers": len(urls), "workers": workers, "items_per_s": count / seconds}


def run_litellm(urls: Sequence[str], count: int) -> Optional[Dict[str, Any]]:
    # LiteLLM fetches a model price list from the internet on import unless told not
    # to; this benchmark reaches 127.0.0.1 only.
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    try:
        import litellm  # type: ignore[import-not-found]
        from litellm import Router  # type: ignore[import-not-found]
    except ImportError:
        return None
    litellm.telemetry = False
    router = Router(
        model_list=[
            {
                "model_name": "pool",
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": f"{url}/v1",
                    "api_key": "none",
                    "rpm": 10**6,
                },
            }
            for url in urls
        ],
        routing_strategy="least-busy",
    )

    def one(item: Dict[str, Any]) -> None:
        router.completion(
            model="pool",
            messages=[{"role": "user", "content": item["prompt"]}],
            temperature=0,
            max_tokens=8,
        )

    workers = SLOTS * len(urls)
    with ThreadPoolExecutor(max_workers=workers) as ex:
        list(ex.map(one, items(workers)))  # warm-up: connections, imports
        started = time.perf_counter()
        list(ex.map(one, items(count)))
        seconds = time.perf_counter() - started
    return {"servers": len(urls), "workers": workers, "items_per_s": count / seconds}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer items (CI smoke run)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    per_slot = 10 if args.quick else 40  # items per parallel slot, so each run is as long
    children = [ChildServer(__file__, "--serve") for _ in range(4)]
    try:
        urls = [c.url for c in children]
        runs = [run_lmstrix(urls[:n], per_slot * SLOTS * n) for n in (1, 2, 4)]
        litellm_runs = [run_litellm(urls[:n], per_slot * SLOTS * n) for n in (1, 2, 4)]
    finally:
        for child in children:
            child.close()
    one = runs[0]["items_per_s"]
    rows = []
    for run, other in zip(runs, litellm_runs):
        ideal = one * run["servers"]
        bound = run["workers"] / LATENCY_S  # every slot busy all the time
        rows.append(
            [
                run["servers"],
                run["workers"],
                round(run["items_per_s"], 1),
                round(ideal, 1),
                f"{run['items_per_s'] / ideal:.3f}x",
                f"{run['items_per_s'] / bound:.3f}x",
                "not installed" if other is None else round(other["items_per_s"], 1),
            ]
        )
    at_four = runs[2]["items_per_s"] / (one * 4)
    targets = [Target("lmstrix pool at 4 servers / linear", at_four, ">=", TARGET_AT_4, "x")]
    if args.json:
        emit_json(
            {
                "latency_s": LATENCY_S,
                "slots": SLOTS,
                "lmstrix": runs,
                "litellm": litellm_runs,
                "targets": [t.to_dict() for t in targets],
            }
        )
        return 0
    print(f"A batch over a pool: {SLOTS} slots per server, {LATENCY_S * 1000:.0f} ms per request")
    print_table(
        [
            "servers",
            "workers",
            "items/s",
            "linear (1 server x N)",
            "vs linear",
            "vs slots/latency",
            "LiteLLM Router items/s",
        ],
        rows,
        title="Throughput",
    )
    if litellm_runs[0] is None:
        print("LiteLLM is not installed: its column is empty (pip install litellm).")
    print_targets(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
