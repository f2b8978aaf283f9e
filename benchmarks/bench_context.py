"""Benchmark: lmstrix's context search against a naive baseline on the same simulated fleet.

Run it from the repository root (or anywhere): ``python benchmarks/bench_context.py``
(``--json`` for machine output; ``--quick`` is accepted and changes nothing: the
whole run takes about two seconds, and a subset would report different ratios).
Standard library and lmstrix only; the simulator runs with ``time_scale=0``, so costs
are the simulator's *modelled* seconds (``counters.simulated_seconds``), never real sleeps.

Fleet: every chat model of ``lmstrix.testing.test_fleet()`` that answers
deterministically, i.e. all LLMs except the ``noise > 0`` ones (their answers near the
limit are coin flips, so one run of each strategy would compare luck). The broken
model is kept: it is deterministic, and a search must cope with it. Every strategy
sees exactly the same models, each on a fresh simulator, counters reset per model.

Strategies:

1. lmstrix: ``find_context_limit(client, key, trials=1, min_context=2048,
   resolution=1024, seed=0)``; it finds the loadable *and* the working limit.
2. naive baseline (an older tool's published method): load at 1024; then at
   min(102400, declared); if that works, climb by 10240 (capped at the declared
   maximum) until a load fails; then bisect between the last good and the first bad
   load down to 1024 tokens. A load counts as good when the load call succeeds and one
   tiny prompt ("2+2=", max_tokens 8) gets an answer. It unloads before each load,
   never reads back the applied context (so an auto-fitting model looks loadable up to
   its declared maximum) and reports only a "loadable" number.
3. theoretical minimum (a reference, not a strategy that runs): see ``theoretical``.

Targets (PASS/MISS in the summary; the exit status is 0 either way): lmstrix needs at
most 0.7x the baseline's loads and 0.85x its simulated seconds, fleet totals.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import Target, emit_json, fmt_ratio, print_table, print_targets

from lmstrix import Client, find_context_limit
from lmstrix.errors import APIError
from lmstrix.testing import FakeLMStudio, SimModel, machine_fleet, test_fleet

MIN_CONTEXT = 2048
RESOLUTION = 1024
TARGET_LOADS = 0.7
TARGET_SECONDS = 0.85

# The naive baseline's published constants.
NAIVE_FIRST = 1024
NAIVE_SECOND = 102_400
NAIVE_STEP = 10_240
NAIVE_RESOLUTION = 1024


def fleet(name: str = "test", memory_gib: float = 16.0) -> List[SimModel]:
    """The models every strategy runs on: the deterministic chat models of the test fleet,
    or ``machine_fleet(memory_gib)`` (typical LM Studio models on a machine whose memory
    for weights and KV cache is ``memory_gib``)."""
    if name == "machine":
        return machine_fleet(memory_gib)
    return [m for m in test_fleet() if m.type == "llm" and m.noise == 0]


def true_loadable(model: SimModel) -> int:
    """The largest context the model really loads at as asked."""
    return min(model.loadable_context, model.declared_context)


def true_working(model: SimModel) -> Optional[int]:
    """The largest prompt it answers right (None: it never does)."""
    if model.broken:
        return None
    return min(model.working_context, true_loadable(model))


# ---------------------------------------------------------------------------- strategies


def run_lmstrix(client: Client, model: SimModel) -> Dict[str, Any]:
    report = find_context_limit(
        client,
        model.key,
        trials=1,
        min_context=MIN_CONTEXT,
        resolution=RESOLUTION,
        seed=0,
    )
    return {
        "loadable": report.loadable_context,
        "working": report.working_context,
        "status": report.status,
    }


def run_naive(client: Client, model: SimModel) -> Dict[str, Any]:
    """The baseline: 1024, then 102400 (or declared), climb by 10240, bisect to 1024."""
    declared = client.get_model(model.key).max_context_length or model.declared_context
    loaded: List[str] = []

    def good(size: int) -> bool:
        while loaded:
            with contextlib.suppress(APIError):
                client.unload(loaded.pop())
        try:
            instance = client.load(model.key, context_length=size)
        except APIError:
            return False
        loaded.append(instance.id)
        try:
            reply = client.chat(instance.id, "2+2=", max_tokens=8)
        except APIError:
            return False
        return bool(reply.text.strip())

    best: Optional[int] = None
    bad: Optional[int] = None
    first = min(NAIVE_FIRST, declared)
    if good(first):
        best = first
        size = min(NAIVE_SECOND, declared)
        if size > best:
            if good(size):
                best = size
                while best < declared:
                    size = min(best + NAIVE_STEP, declared)
                    if good(size):
                        best = size
                    else:
                        bad = size
                        break
            else:
                bad = size
        while bad is not None and bad - best > NAIVE_RESOLUTION:
            mid = (best + bad) // 2
            if good(mid):
                best = mid
            else:
                bad = mid
    while loaded:
        client.unload(loaded.pop())
    return {"loadable": best, "working": None, "status": "done" if best else "failed"}


def theoretical(model: SimModel) -> Dict[str, Any]:
    """The least any load-and-probe search could spend on this model (a lower bound).

    Loads: 1 when the top (declared) size loads as asked, or when the model auto-fits
    (the read-back of one over-size load pins the limit to 256 tokens); otherwise a
    decision tree must tell apart ceil((top - floor) / resolution) intervals plus "the
    top loads", so ceil(log2(intervals + 1)) loads. Seconds: one successful load at
    the true limit, each other load at the cheapest a load can cost (a guardrail
    refusal, 0.25 x load_base_s; a crash above the limit, at least a load at the
    limit; a success, at least a load at the floor), one unload, and one probe at the
    working limit (prefill of that many tokens and one generated token; a broken
    model needs only the smallest probe, 256 tokens).
    """
    top = model.declared_context
    floor = min(MIN_CONTEXT, top)
    limit = true_loadable(model)
    if limit >= top or model.auto_fit:
        loads = 1
    else:
        intervals = math.ceil((top - floor) / RESOLUTION)
        loads = max(1, math.ceil(math.log2(intervals + 1)))
    fail = model.load_seconds(limit) if model.crash_on_overload else model.load_base_s * 0.25
    cheapest = min(fail, model.load_seconds(floor))
    working = true_working(model)
    load_s = model.load_seconds(limit) + (loads - 1) * cheapest + model.unload_s
    prompt_s = model.prefill_seconds(working if working is not None else 256)
    prompt_s += model.decode_s_per_token
    return {
        "loadable": limit,
        "working": working,
        "loads": loads,
        "simulated_seconds": load_s + prompt_s,
        "load_seconds": load_s,
        "prompt_seconds": prompt_s,
    }


def measure(
    name: str, models: List[SimModel], strategy: Callable[[Client, SimModel], Dict[str, Any]]
) -> Dict[str, Dict[str, Any]]:
    """Run ``strategy`` on each model on a fresh simulator; read its counters per model."""
    out: Dict[str, Dict[str, Any]] = {}
    with FakeLMStudio(models=models, time_scale=0.0) as fake:
        client = Client(fake.base_url, max_retries=0)
        _ = client.server_api  # API detection happens once, before any counting
        for model in models:
            fake.reset_counters()
            started = time.perf_counter()
            found = strategy(client, model)
            wall = time.perf_counter() - started
            counters = fake.counters
            if fake.loaded():
                raise RuntimeError(f"{name} left {model.key} loaded")
            # Prompt seconds are exact: the simulator charges processed (uncached) prompt
            # tokens and generated tokens at the model's rates; the rest is loads/unloads.
            prompt_s = (
                model.prefill_seconds(counters.processed_tokens)
                + model.decode_s_per_token * counters.generated_tokens
            )
            out[model.key] = {
                **found,
                "loads": counters.loads,
                "load_failures": counters.load_failures,
                "requests": counters.total_requests,
                "prompt_tokens": counters.prompt_tokens,
                "simulated_seconds": counters.simulated_seconds,
                "load_seconds": counters.simulated_seconds - prompt_s,
                "prompt_seconds": prompt_s,
                "wall_seconds": wall,
            }
        client.close()
    return out


# ---------------------------------------------------------------------------- report


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="accepted for CI; the full run takes about two seconds, so it is the same run",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--fleet",
        choices=("test", "machine"),
        default="test",
        help="test: the edge-case test fleet; machine: typical models on one machine",
    )
    parser.add_argument(
        "--memory-gib",
        type=float,
        default=16.0,
        help="with --fleet machine: memory for weights and KV cache (default 16)",
    )
    args = parser.parse_args(argv)

    models = fleet(args.fleet, args.memory_gib)
    results = {
        "lmstrix": measure("lmstrix", models, run_lmstrix),
        "baseline": measure("baseline", models, run_naive),
    }
    minimum = {m.key: theoretical(m) for m in models}
    truth = {m.key: {"loadable": true_loadable(m), "working": true_working(m)} for m in models}

    def total(strategy: str, field: str) -> float:
        if strategy == "minimum":
            return float(sum(minimum[k][field] for k in minimum))
        return float(sum(r[field] for r in results[strategy].values()))

    loads_ratio = total("lmstrix", "loads") / total("baseline", "loads")
    seconds_ratio = total("lmstrix", "simulated_seconds") / total("baseline", "simulated_seconds")
    load_s_ratio = total("lmstrix", "load_seconds") / total("baseline", "load_seconds")

    # Accuracy: lmstrix against the hidden truth; the baseline's single number against both.
    errors_l: List[int] = []
    errors_w: List[int] = []
    above: List[str] = []
    for key, found in results["lmstrix"].items():
        true = truth[key]
        for kind, errs in (("loadable", errors_l), ("working", errors_w)):
            got, want = found[kind], true[kind]
            if got is None or want is None:
                if got != want:
                    above.append(f"{key} {kind}: found {got}, truth {want}")
                continue
            errs.append(abs(got - want))
            if got > want:
                above.append(f"{key} {kind}: {got:,} > {want:,}")
    naive_over_w = [
        k
        for k, r in results["baseline"].items()
        if r["loadable"] is not None and (truth[k]["working"] or 0) < r["loadable"]
    ]
    naive_over_l = [
        k
        for k, r in results["baseline"].items()
        if r["loadable"] is not None and truth[k]["loadable"] < r["loadable"]
    ]
    targets = [
        Target("loads: lmstrix / baseline", loads_ratio, "<=", TARGET_LOADS, "x"),
        Target("simulated seconds: lmstrix / baseline", seconds_ratio, "<=", TARGET_SECONDS, "x"),
    ]
    accuracy = {
        "lmstrix_max_abs_error_loadable": max(errors_l, default=0),
        "lmstrix_max_abs_error_working": max(errors_w, default=0),
        "lmstrix_above_truth": above,
        "baseline_above_true_working": naive_over_w,
        "baseline_above_true_loadable": naive_over_l,
    }

    if args.json:
        emit_json(
            {
                "benchmark": "bench_context",
                "fleet": args.fleet,
                "memory_gib": args.memory_gib if args.fleet == "machine" else None,
                "quick": args.quick,
                "models": [m.key for m in models],
                "truth": truth,
                "results": {**results, "minimum": minimum},
                "totals": {
                    s: {
                        f: total(s, f)
                        for f in (
                            "loads",
                            "requests",
                            "prompt_tokens",
                            "simulated_seconds",
                            "load_seconds",
                            "prompt_seconds",
                        )
                        if not (s == "minimum" and f in ("requests", "prompt_tokens"))
                    }
                    for s in ("lmstrix", "baseline", "minimum")
                },
                "ratios": {
                    "loads": loads_ratio,
                    "simulated_seconds": seconds_ratio,
                    "load_seconds": load_s_ratio,
                },
                "accuracy": accuracy,
                "targets": [t.to_dict() for t in targets],
            }
        )
        return 0

    if args.fleet == "machine":
        where = (
            f"{len(models)} models of lmstrix.testing.machine_fleet({args.memory_gib:g}) "
            f"(typical models,\nlimits from weights and KV cache against {args.memory_gib:g} GiB)"
        )
    else:
        where = (
            f"{len(models)} deterministic chat models of lmstrix.testing.test_fleet() (noisy "
            "ones left out,\nthe broken one kept)"
        )
    print(
        f"{where}; a fresh simulator per strategy, time_scale=0: seconds are simulated.\n"
        "lmstrix: find_context_limit(trials=1, min_context=2048, resolution=1024, seed=0).\n"
    )
    rows = []
    lm, nv = results["lmstrix"], results["baseline"]
    for m in models:
        k = m.key
        rows.append(
            [
                k,
                m.declared_context,
                truth[k]["loadable"],
                truth[k]["working"],
                lm[k]["loadable"],
                lm[k]["working"],
                lm[k]["loads"],
                lm[k]["simulated_seconds"],
                nv[k]["loadable"],
                nv[k]["loads"],
                nv[k]["simulated_seconds"],
                minimum[k]["loads"],
                minimum[k]["simulated_seconds"],
            ]
        )
    print_table(
        [
            "model",
            "declared",
            "true L",
            "true W",
            "lmstrix L",
            "lmstrix W",
            "loads",
            "sim s",
            "naive L",
            "loads",
            "sim s",
            "min loads",
            "min s",
        ],
        rows,
        title="Per model (L = loadable, W = working; '-' = none found)",
    )
    trows = []
    for s in ("lmstrix", "baseline", "minimum"):
        loads, secs = total(s, "loads"), total(s, "simulated_seconds")
        measured = s != "minimum"
        trows.append(
            [
                s,
                int(loads),
                int(total(s, "load_failures")) if measured else None,
                int(total(s, "requests")) if measured else None,
                int(total(s, "prompt_tokens")) if measured else None,
                secs,
                total(s, "load_seconds"),
                total(s, "prompt_seconds"),
                total(s, "wall_seconds") if measured else None,
                fmt_ratio(loads / total("baseline", "loads")),
                fmt_ratio(secs / total("baseline", "simulated_seconds")),
                fmt_ratio(total(s, "load_seconds") / total("baseline", "load_seconds")),
            ]
        )
    print_table(
        [
            "strategy",
            "loads",
            "failed",
            "requests",
            "prompt tokens",
            "sim s",
            "load s",
            "prompt s",
            "wall s",
            "loads / base",
            "sim s / base",
            "load s / base",
        ],
        trows,
        title="Totals (sim s = load s, i.e. loads and unloads, + prompt s, i.e. prefill and "
        "generation)",
    )
    print("Accuracy")
    print(
        f"  lmstrix: max |found - truth| loadable {accuracy['lmstrix_max_abs_error_loadable']:,}"
        f", working {accuracy['lmstrix_max_abs_error_working']:,} tokens; above the truth: "
        f"{', '.join(above) if above else 'none'}"
    )
    print(
        f"  baseline: its number exceeds the true working limit for {len(naive_over_w)} of "
        f"{len(models)} models, the true loadable limit for {len(naive_over_l)}"
        + (f" ({', '.join(naive_over_l)})" if naive_over_l else "")
    )
    print()
    print_targets(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
