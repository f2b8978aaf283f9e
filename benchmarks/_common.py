"""Helpers shared by the benchmark scripts: repo path, tables, verdicts, JSON output.

Not a benchmark itself. Importing it puts the repository root first on ``sys.path`` so
``import lmstrix`` finds this checkout when a script is run as
``python benchmarks/bench_X.py`` from anywhere.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

__all__ = [
    "REPO_ROOT",
    "Target",
    "emit_json",
    "fmt_ratio",
    "median",
    "print_table",
    "print_targets",
]


def median(values: Sequence[float]) -> float:
    """The median (0.0 for no values)."""
    return float(statistics.median(values)) if values else 0.0


def fmt_ratio(value: Optional[float]) -> str:
    """``1.23x``, or ``-`` when there is nothing to compare."""
    return "-" if value is None else f"{value:.2f}x"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "") -> None:
    """Print a plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if title:
        print(title)

    def line(row: List[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [v.rjust(w) for v, w in zip(row[1:], widths[1:])]
        return "  ".join([first, *rest]).rstrip()

    print(line(cells[0]))
    print("-" * len(line(cells[0])))
    for row in cells[1:]:
        print(line(row))
    print()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


class Target:
    """One target: a measured value against a bound, ``<=`` or ``>=``; None = not measured."""

    def __init__(self, name: str, value: Optional[float], op: str, bound: float, unit: str = ""):
        if op not in ("<=", ">="):
            raise ValueError(op)
        self.name, self.value, self.op, self.bound, self.unit = name, value, op, bound, unit

    @property
    def verdict(self) -> str:
        """PASS, MISS, or SKIP (not measured)."""
        if self.value is None:
            return "SKIP"
        ok = self.value <= self.bound if self.op == "<=" else self.value >= self.bound
        return "PASS" if ok else "MISS"

    def to_dict(self) -> Dict[str, Any]:
        """JSON shape."""
        return {
            "name": self.name,
            "value": None if self.value is None else round(self.value, 4),
            "op": self.op,
            "bound": self.bound,
            "unit": self.unit,
            "verdict": self.verdict,
        }


def print_targets(targets: Sequence[Target]) -> None:
    """Print the summary lines: name, value, bound, verdict."""
    rows = []
    for t in targets:
        digits = 3 if t.unit == "x" else 1
        value = "not measured" if t.value is None else f"{t.value:.{digits}f}{t.unit}"
        rows.append([t.name, value, f"{t.op} {t.bound:g}{t.unit}", t.verdict])
    print_table(["target", "measured", "goal", "verdict"], rows, title="Summary")


def emit_json(payload: Dict[str, Any]) -> None:
    """Print ``payload`` as indented JSON on stdout."""
    json.dump(payload, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


class ChildServer:
    """A server in a child process (so it does not share the client's GIL)."""

    def __init__(self, script: str, *args: str) -> None:
        """Run ``python script *args``; the child prints ``PORT n`` once it listens, and
        stops when its standard input is closed."""
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "PORT":
            self.close()
            raise RuntimeError(f"the server {script} {args} did not start")
        self.port = int(line[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> ChildServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
