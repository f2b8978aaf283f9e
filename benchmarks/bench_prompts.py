"""Benchmark: lmstrix.prompts.render on 1, 2 and 4 MB templates, against naive str.replace.

Run it from anywhere: ``python benchmarks/bench_prompts.py``. Standard library only; it
imports lmstrix from this repository. Each size doubles the text and the number of
placeholders (10,000 per MB) and of distinct names (250 per MB). lmstrix scans the
text once, so each doubling should cost about 2x (target: at most 2.3x). The naive
baseline, measured in the same run, calls ``str.replace`` once per name over the whole
text, so its cost grows with size x names: about 4x per doubling.

Options: ``--runs N`` (timed runs of lmstrix per figure, the best kept; default 50),
``--naive-runs N`` (default 1) and ``--json``. The exit status is 1 when a doubling misses
the target. On a busy machine the figures are noisy: rerun with more ``--runs``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import Target, emit_json, fmt_ratio, print_table, print_targets  # puts repo first

from lmstrix.prompts import PromptLibrary, render

PLACEHOLDERS_PER_MB = 10_000
NAMES_PER_MB = 250
TARGET_RATIO = 2.3
FILLER = (
    "The quick brown fox jumps over the lazy dog; lorem ipsum dolor sit amet, consectetur "
    "adipiscing elit, sed do eiusmod tempor. "
)


def build(scale: int) -> Tuple[str, Dict[str, str], Dict[str, str]]:
    """A template of ``scale`` MB, its variables, and a library of entries naming them."""
    count = PLACEHOLDERS_PER_MB * scale
    names = NAMES_PER_MB * scale
    chunk_chars = 1_000_000 // PLACEHOLDERS_PER_MB
    pieces: List[str] = []
    for i in range(count):
        name = f"v{i % names}"
        pieces.append(FILLER[: chunk_chars - len(name) - 4])
        pieces.append("{{" + name + "}}")
    variables = {f"v{i}": f"value-{i}" for i in range(names)}
    library = {f"e{i}": f"<entry {i}: {{{{v{i}}}}}>" for i in range(names)}
    return "".join(pieces), variables, library


def naive(template: str, variables: Dict[str, str]) -> str:
    """The baseline: one ``str.replace`` over the whole text per name."""
    for name, value in variables.items():
        template = template.replace("{{" + name + "}}", value)
    return template


def naive_library(template: str, variables: Dict[str, str], library: Dict[str, str]) -> str:
    """The baseline with a library: entries replaced first, then variables."""
    for name, text in library.items():
        template = template.replace("{{" + name + "}}", text)
    return naive(template, variables)


def timed(func: Callable[[], str]) -> Tuple[float, str]:
    """Time one call with ``time.perf_counter``; return the seconds and the result.

    The garbage collector is paused while timing, as ``timeit`` does, so that a
    collection landing in one size and not the next does not skew the ratios.
    """
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = func()
        return time.perf_counter() - start, result
    finally:
        gc.enable()


Row = Tuple[int, int, int, float, float]  # size, placeholders, names, lmstrix s, naive s


def table(title: str, rows: List[Row]) -> List[float]:
    """Print one table; return the lmstrix time ratio of each doubling."""
    ours = [r[3] for r in rows]
    theirs = [r[4] for r in rows]
    printed = []
    for i, (size, count, names, mine, base) in enumerate(rows):
        printed.append(
            [
                f"{size / 1e6:.2f} MB",
                count,
                names,
                mine * 1000,
                fmt_ratio(ours[i] / ours[i - 1] if i else None),
                base * 1000,
                fmt_ratio(theirs[i] / theirs[i - 1] if i else None),
                f"{mine / base:.3f}",
            ]
        )
    headers = [
        "size",
        "placeholders",
        "names",
        "lmstrix ms",
        "doubling",
        "naive ms",
        "doubling",
        "lmstrix/naive",
    ]
    print_table(headers, printed, title=title)
    return [ours[i] / ours[i - 1] for i in range(1, len(ours))]


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark and print the tables; return 0 (1 if a ratio misses the target)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed runs per figure (best kept)")
    parser.add_argument("--naive-runs", type=int, default=1, help="timed runs of the baseline")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    scales = (1, 2, 4)
    jobs: Dict[Tuple[int, str], Callable[[], str]] = {}
    baselines: Dict[Tuple[int, str], Callable[[], str]] = {}
    sizes: Dict[int, int] = {}
    for scale in scales:
        template, variables, entries = build(scale)
        lib_template = template.replace("{{v", "{{e")
        library = PromptLibrary.from_dict(entries)
        sizes[scale] = len(template)
        jobs[scale, "plain"] = functools.partial(render, template, variables)
        jobs[scale, "library"] = functools.partial(render, lib_template, variables, library=library)
        baselines[scale, "plain"] = functools.partial(naive, template, variables)
        baselines[scale, "library"] = functools.partial(
            naive_library, lib_template, variables, entries
        )

    # Rounds go over every size in turn, so a busy moment on the machine hits all sizes
    # alike instead of inflating one of them; the best time of each figure is kept.
    # Outputs are not kept between runs, so every size runs with the same memory around it.
    best = {key: float("inf") for key in jobs}
    for _ in range(args.runs):
        for key, job in jobs.items():
            best[key] = min(best[key], timed(job)[0])
    naive_best = {key: float("inf") for key in baselines}
    for _ in range(args.naive_runs):
        for key, job in baselines.items():
            seconds, result = timed(job)
            assert result == jobs[key](), f"lmstrix and the baseline disagree on {key}"
            naive_best[key] = min(naive_best[key], seconds)

    load = f"; load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    print(
        f"Python {sys.version.split()[0]}; best of {args.runs} runs (naive: {args.naive_runs})"
        f"{load}; rendered output checked against the baseline\n"
        "On a busy machine rerun with more --runs: the best time is the least disturbed one.\n"
    )
    titles = {
        "plain": "Variables only: {{vN}} placeholders",
        "library": "With a library: {{eN}} names an entry that names {{vN}}",
    }
    targets: List[Target] = []
    tables: Dict[str, List[Row]] = {}
    for kind, title in titles.items():
        rows = [
            (
                sizes[scale],
                PLACEHOLDERS_PER_MB * scale,
                NAMES_PER_MB * scale,
                best[scale, kind],
                naive_best[scale, kind],
            )
            for scale in scales
        ]
        tables[kind] = rows
        for scale, doubling in zip(scales[1:], table(title, rows)):
            targets.append(
                Target(f"{kind}: {scale // 2} MB -> {scale} MB", doubling, "<=", TARGET_RATIO, "x")
            )
    print_targets(targets)
    if args.json:
        emit_json(
            {
                "benchmark": "prompts",
                "python": sys.version.split()[0],
                "runs": args.runs,
                "tables": {
                    kind: [
                        dict(zip(("chars", "placeholders", "names", "lmstrix_s", "naive_s"), r))
                        for r in rows
                    ]
                    for kind, rows in tables.items()
                },
                "targets": [t.to_dict() for t in targets],
            }
        )
    return 0 if all(t.verdict == "PASS" for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
