"""The tables ``bench_context.py`` prints: per model, per fleet and totals."""

from __future__ import annotations

from typing import Any, Dict, List

from _common import fmt_ratio, print_table

LMSTRIX = ("lmstrix", "lmstrix-1")  # lmstrix with its defaults (trials 3), and one trial


def total(runs: List[Dict[str, Any]], strategy: str, field: str) -> float:
    """A field summed over the runs' models (0 for what the minimum does not count)."""
    return float(sum(r.get(field) or 0 for run in runs for r in run["results"][strategy].values()))


def print_models(run: Dict[str, Any]) -> None:
    lm, nv, mn = (run["results"][s] for s in ("lmstrix", "baseline", "minimum"))
    truth = run["truth"]
    rows = [
        [
            m.key,
            m.declared_context,
            truth[m.key]["loadable"],
            truth[m.key]["working"],
            lm[m.key]["loadable"],
            lm[m.key]["working"],
            lm[m.key]["loads"],
            lm[m.key]["simulated_seconds"],
            nv[m.key]["loadable"],
            nv[m.key]["loads"],
            nv[m.key]["simulated_seconds"],
            mn[m.key]["loads"],
            mn[m.key]["simulated_seconds"],
        ]
        for m in run["sim_models"]
    ]
    headers = ["model", "declared", "true L", "true W", "lmstrix L", "lmstrix W", "loads"]
    headers += ["sim s", "naive L", "loads", "sim s", "min loads", "min s"]
    print_table(
        headers,
        rows,
        title=f"Per model, {run['fleet']} (L = loadable, W = working; '-' = none found)",
    )


def print_breakdown(runs: List[Dict[str, Any]]) -> None:
    rows = []
    for run in runs:
        one = [run]
        base_l, base_s = (
            total(one, "baseline", "loads"),
            total(one, "baseline", "simulated_seconds"),
        )
        rows.append(
            [
                run["fleet"],
                len(run["models"]),
                int(total(one, "lmstrix", "loads")),
                int(base_l),
                int(total(one, "minimum", "loads")),
                int(total(one, "minimum", "top_first_loads")),
                fmt_ratio(total(one, "lmstrix", "loads") / base_l),
                fmt_ratio(total(one, "minimum", "loads") / base_l),
                fmt_ratio(total(one, "minimum", "top_first_loads") / base_l),
                total(one, "lmstrix", "simulated_seconds"),
                base_s,
                fmt_ratio(total(one, "lmstrix", "simulated_seconds") / base_s),
                fmt_ratio(total(one, "minimum", "simulated_seconds") / base_s),
                fmt_ratio(total(one, "lmstrix-1", "loads") / base_l),
                fmt_ratio(total(one, "lmstrix-1", "simulated_seconds") / base_s),
            ]
        )
    headers = ["fleet", "models", "loads", "base", "min", "top-first", "loads / base"]
    headers += ["min / base", "top-first / base", "sim s", "base sim s", "sim s / base"]
    headers += ["min / base", "1 trial: loads / base", "sim s / base"]
    print_table(
        headers,
        rows,
        title="Per fleet: lmstrix (defaults; last two columns: one trial), the baseline, the "
        "minimum, and the worst case of any search that tries the top first",
    )


def print_totals(runs: List[Dict[str, Any]]) -> None:
    def ratio(strategy: str, field: str) -> str:
        return fmt_ratio(total(runs, strategy, field) / total(runs, "baseline", field))

    rows = []
    for s in (*LMSTRIX, "baseline", "minimum"):
        measured = s != "minimum"
        rows.append(
            [
                s,
                int(total(runs, s, "loads")),
                int(total(runs, s, "load_failures")) if measured else None,
                int(total(runs, s, "requests")) if measured else None,
                int(total(runs, s, "prompt_tokens")) if measured else None,
                total(runs, s, "simulated_seconds"),
                total(runs, s, "load_seconds"),
                total(runs, s, "prompt_seconds"),
                total(runs, s, "wall_seconds") if measured else None,
                ratio(s, "loads"),
                ratio(s, "simulated_seconds"),
                ratio(s, "load_seconds"),
            ]
        )
    headers = ["strategy", "loads", "failed", "requests", "prompt tokens", "sim s", "load s"]
    headers += ["prompt s", "wall s", "loads / base", "sim s / base", "load s / base"]
    print_table(
        headers,
        rows,
        title="Totals (sim s = load s, i.e. loads and unloads, + prompt s, i.e. prefill and "
        "generation)",
    )
