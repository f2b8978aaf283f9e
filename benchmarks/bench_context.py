"""Benchmark: lmstrix's context search against a naive baseline on the same simulated fleets.

Run it from the repository root (or anywhere): ``python benchmarks/bench_context.py``
(``--json`` for machine output; ``--quick`` is accepted and changes nothing: the
whole run takes about a minute, and a subset would report different ratios).
Standard library and lmstrix only; the simulator runs with ``time_scale=0``, so costs
are the simulator's *modelled* seconds (``counters.simulated_seconds``), never real sleeps.

Fleets (``--fleet``; every strategy sees exactly the same models, each sub-fleet on a
fresh simulator, counters reset per model):

* ``test``: every chat model of ``lmstrix.testing.test_fleet()`` that answers
  deterministically, i.e. all LLMs except the ``noise > 0`` ones (their answers near
  the limit are coin flips, so one run of each strategy would compare luck). The
  broken model is kept: it is deterministic, and a search must cope with it. These are
  edge cases, mostly with small declared contexts (1k-32k).
* ``machine``: ``lmstrix.testing.machine_fleet(--memory-gib)``, typical LM Studio
  models whose limits follow from their weights and KV cache against that memory.
* ``all`` (the default): the test fleet plus the machine fleet at each of
  ``MACHINE_GIB`` (8 to 64 GiB, the memory sizes LM Studio users run), added up.
  The targets are judged on these totals; a breakdown shows every sub-fleet.

The simulated models count tokens with the simulator's realistic tokenizer (words and
punctuation: texts of one length count 0.5-2% apart), as a real server does.

Strategies:

1. lmstrix with its defaults: ``find_context_limit(client, key, min_context=2048,
   resolution=1024, seed=0)`` (``trials=3``); and with one trial (``trials=1``).
   Both find the loadable *and* the working limit.
2. naive baseline (an older tool's published method): load at 1024; then at
   min(102400, declared); if that works, climb by 10240 (capped at the declared
   maximum) until a load fails; then bisect between the last good and the first bad
   load down to 1024 tokens. A load counts as good when the load call succeeds and one
   tiny prompt ("2+2=", max_tokens 8) gets an answer. It unloads before each load,
   never reads back the applied context (so an auto-fitting model looks loadable up to
   its declared maximum) and reports only a "loadable" number.
3. theoretical minimum (a reference, not a strategy that runs): see ``theoretical``.

Targets (PASS/MISS in the summary; the exit status is 0 either way), fleet totals
against the baseline: with the defaults at most 0.65x its loads and 1.1x its simulated
seconds (three needles confirm the working limit, which the baseline never measures);
with one trial at most 0.62x its loads and 0.8x its seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import Target, emit_json, print_targets
from _context_tables import LMSTRIX, print_breakdown, print_models, print_totals, total

from lmstrix import Client, find_context_limit
from lmstrix.context._runner import ANSWER_TOKENS  # the reply room every probe keeps free
from lmstrix.errors import APIError
from lmstrix.testing import FakeLMStudio, SimModel, machine_fleet, test_fleet

MIN_CONTEXT = 2048
RESOLUTION = 1024
# (strategy, loads, simulated seconds): the most each may spend against the baseline
TARGETS = (("lmstrix", 0.65, 1.1), ("lmstrix-1", 0.62, 0.8))

# The naive baseline's published constants.
NAIVE_FIRST = 1024
NAIVE_SECOND = 102_400
NAIVE_STEP = 10_240
NAIVE_RESOLUTION = 1024


# The memory sizes of the machines in the default fleet (GiB for weights and KV cache).
MACHINE_GIB = (8, 16, 24, 32, 64)


def fleet(name: str = "test", memory_gib: float = 16.0) -> List[SimModel]:
    """One sub-fleet: the deterministic chat models of the test fleet, or
    ``machine_fleet(memory_gib)`` (typical LM Studio models on a machine whose memory
    for weights and KV cache is ``memory_gib``)."""
    if name == "machine":
        return machine_fleet(memory_gib)
    return [m for m in test_fleet() if m.type == "llm" and m.noise == 0]


def fleets(name: str, memory_gib: float) -> List[Tuple[str, List[SimModel]]]:
    """The labelled sub-fleets ``--fleet name`` runs (``all``: test plus every machine)."""
    if name == "test":
        return [("test", fleet("test"))]
    if name == "machine":
        return [(f"machine {memory_gib:g} GiB", fleet("machine", memory_gib))]
    return [("test", fleet("test"))] + [
        (f"machine {gib:g} GiB", fleet("machine", gib)) for gib in MACHINE_GIB
    ]


def true_loadable(model: SimModel) -> int:
    """The largest context the model really loads at as asked."""
    return min(model.loadable_context, model.declared_context)


def true_working(model: SimModel) -> Optional[int]:
    """The largest prompt it answers right (None: it never does), leaving room for the
    reply at the loadable limit (a probe asks for ``ANSWER_TOKENS`` of answer)."""
    if model.broken:
        return None
    return min(model.working_context, true_loadable(model) - ANSWER_TOKENS)


# ---------------------------------------------------------------------------- strategies


def run_lmstrix(trials: int) -> Callable[[Client, SimModel], Dict[str, Any]]:
    """lmstrix's search with ``trials`` needles (3 is the default)."""

    def run(client: Client, model: SimModel) -> Dict[str, Any]:
        report = find_context_limit(
            client,
            model.key,
            trials=trials,
            min_context=MIN_CONTEXT,
            resolution=RESOLUTION,
            seed=0,
        )
        return {
            "loadable": report.loadable_context,
            "working": report.working_context,
            "status": report.status,
        }

    return run


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

    ``top_first_loads`` (a reference for DESIGN's rule of trying the top first): the
    top, then the loads a balanced search over the resolution-wide buckets and
    "nothing loads" needs in the worst case, ceil(log2((top - floor) / resolution + 1)).
    Almost every truth needs that many: a balanced tree has nearly all its leaves at
    full depth.
    """
    top = model.declared_context
    floor = min(MIN_CONTEXT, top)
    limit = true_loadable(model)
    if limit >= top or model.auto_fit:
        loads = top_first = 1
    else:
        intervals = math.ceil((top - floor) / RESOLUTION)
        loads = max(1, math.ceil(math.log2(intervals + 1)))
        top_first = 1 + math.ceil(math.log2((top - floor) / RESOLUTION + 1))
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
        "top_first_loads": top_first,
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


FIELDS = (
    "loads",
    "requests",
    "prompt_tokens",
    "simulated_seconds",
    "load_seconds",
    "prompt_seconds",
)


def run_fleet(label: str, models: List[SimModel]) -> Dict[str, Any]:
    """Both strategies and the minimum on one sub-fleet, with the hidden truth."""
    return {
        "fleet": label,
        "models": [m.key for m in models],
        "sim_models": models,
        "results": {
            "lmstrix": measure("lmstrix", models, run_lmstrix(3)),
            "lmstrix-1": measure("lmstrix-1", models, run_lmstrix(1)),
            "baseline": measure("baseline", models, run_naive),
            "minimum": {m.key: theoretical(m) for m in models},
        },
        "truth": {
            m.key: {"loadable": true_loadable(m), "working": true_working(m)} for m in models
        },
    }


def ratios_of(runs: List[Dict[str, Any]], strategy: str) -> Dict[str, float]:
    """``strategy``'s loads, simulated seconds and load seconds over the baseline's."""
    return {
        f: total(runs, strategy, f) / total(runs, "baseline", f)
        for f in ("loads", "simulated_seconds", "load_seconds")
    }


def accuracy(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Both lmstrix runs against the hidden truth (keys ``lmstrix_*`` for the defaults,
    ``lmstrix-1_*`` for one trial); the baseline's single number against both limits."""
    out: Dict[str, Any] = {}
    for strategy in LMSTRIX:
        errors: Dict[str, List[int]] = {"loadable": [], "working": []}
        above: List[str] = []
        for run in runs:
            where = f"{run['fleet']}: " if len(runs) > 1 else ""
            for key, found in run["results"][strategy].items():
                true = run["truth"][key]
                for kind, errs in errors.items():
                    got, want = found[kind], true[kind]
                    if got is None or want is None:
                        if got != want:
                            above.append(f"{where}{key} {kind}: found {got}, truth {want}")
                        continue
                    errs.append(abs(got - want))
                    if got > want:
                        above.append(f"{where}{key} {kind}: {got:,} > {want:,}")
        out[f"{strategy}_max_abs_error_loadable"] = max(errors["loadable"], default=0)
        out[f"{strategy}_max_abs_error_working"] = max(errors["working"], default=0)
        out[f"{strategy}_above_truth"] = above
    naive_over_w: List[str] = []
    naive_over_l: List[str] = []
    for run in runs:
        where = f"{run['fleet']}: " if len(runs) > 1 else ""
        for key, r in run["results"]["baseline"].items():
            if r["loadable"] is None:
                continue
            if (run["truth"][key]["working"] or 0) < r["loadable"]:
                naive_over_w.append(where + key)
            if run["truth"][key]["loadable"] < r["loadable"]:
                naive_over_l.append(where + key)
    out["baseline_above_true_working"] = naive_over_w
    out["baseline_above_true_loadable"] = naive_over_l
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="accepted for CI; the full run takes about a minute, so it is the same run",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--fleet",
        choices=("all", "test", "machine"),
        default="all",
        help="all (default): the test fleet plus typical models on machines of "
        f"{', '.join(str(g) for g in MACHINE_GIB)} GiB; test: the edge-case test fleet; "
        "machine: typical models on one machine (--memory-gib)",
    )
    parser.add_argument(
        "--memory-gib",
        type=float,
        default=16.0,
        help="with --fleet machine: memory for weights and KV cache (default 16)",
    )
    parser.add_argument(
        "--per-model", action="store_true", help="print every model (the default for one fleet)"
    )
    args = parser.parse_args(argv)

    runs = [run_fleet(label, models) for label, models in fleets(args.fleet, args.memory_gib)]
    ratios = {s: ratios_of(runs, s) for s in LMSTRIX}
    targets = []
    for strategy, most_loads, most_seconds in TARGETS:
        name = "defaults, trials 3" if strategy == "lmstrix" else "one trial"
        got = ratios[strategy]
        targets.append(Target(f"loads ({name}) / baseline", got["loads"], "<=", most_loads, "x"))
        targets.append(
            Target(
                f"sim seconds ({name}) / baseline",
                got["simulated_seconds"],
                "<=",
                most_seconds,
                "x",
            )
        )
    acc = accuracy(runs)
    count = sum(len(run["models"]) for run in runs)

    if args.json:
        emit_json(
            {
                "benchmark": "bench_context",
                "fleet": args.fleet,
                "memory_gib": args.memory_gib if args.fleet == "machine" else None,
                "machine_gib": list(MACHINE_GIB) if args.fleet == "all" else None,
                "quick": args.quick,
                "fleets": [
                    {
                        "fleet": run["fleet"],
                        "models": run["models"],
                        "truth": run["truth"],
                        "results": run["results"],
                        "ratios": {s: ratios_of([run], s) for s in LMSTRIX},
                    }
                    for run in runs
                ],
                "totals": {
                    s: {
                        f: total(runs, s, f)
                        for f in FIELDS
                        if not (s == "minimum" and f in ("requests", "prompt_tokens"))
                    }
                    for s in (*LMSTRIX, "baseline", "minimum")
                },
                "ratios": ratios,
                "accuracy": acc,
                "targets": [t.to_dict() for t in targets],
            }
        )
        return 0

    print(
        f"{count} models in {len(runs)} fleet(s): {', '.join(r['fleet'] for r in runs)}.\n"
        "test = the deterministic chat models of lmstrix.testing.test_fleet() (edge cases;\n"
        "noisy ones left out, the broken one kept); machine N GiB = machine_fleet(N), typical\n"
        "models with limits from weights and KV cache against N GiB. A fresh simulator per\n"
        "fleet and strategy, time_scale=0: seconds are simulated.\n"
        "lmstrix: find_context_limit(min_context=2048, resolution=1024, seed=0), with its\n"
        "default trials=3; lmstrix-1: the same with trials=1. Realistic simulated tokenizer.\n"
    )
    if args.per_model or len(runs) == 1:
        for run in runs:
            print_models(run)
    print_breakdown(runs)
    print_totals(runs)
    print("Accuracy")
    for s in LMSTRIX:
        above = acc[f"{s}_above_truth"]
        print(
            f"  {s}: max |found - truth| loadable {acc[f'{s}_max_abs_error_loadable']:,}"
            f", working {acc[f'{s}_max_abs_error_working']:,} tokens; above the truth: "
            f"{', '.join(above) if above else 'none'}"
        )
    over_l = acc["baseline_above_true_loadable"]
    print(
        f"  baseline: its number exceeds the true working limit for "
        f"{len(acc['baseline_above_true_working'])} of {count} models, the true loadable "
        f"limit for {len(over_l)}" + (f" ({', '.join(over_l)})" if over_l else "")
    )
    print()
    print_targets(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
