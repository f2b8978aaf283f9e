"""Start-up time of the command line: ``lmstrix --help`` and ``python -m lmstrix --help``.

Each figure is the median wall time of fresh interpreter processes, run interleaved
(one of each per round, after a warm-up round that also writes the bytecode caches),
beside a bare ``python -c pass`` measured in the same rounds. What is measured:

* ``python -c pass`` -- the baseline: the interpreter alone;
* ``lmstrix --help`` (console script) -- the ``lmstrix`` script installed beside this
  interpreter (``<venv>/bin/lmstrix``), when there is one; this is what users run, and
  it includes the installer's wrapper and, for editable installs, its import hook;
* ``lmstrix --help`` (run()) -- ``python -c "from lmstrix.cli import run; run()" --help``:
  the same code path without the installed wrapper (click when importable, else lite);
* ``python -m lmstrix --help`` -- the lite (argparse) CLI.

Targets: the console script under 150 ms above the bare interpreter, the lite CLI under
60 ms above it. Usage: ``python benchmarks/bench_cli.py [--quick] [--runs N] [--json]``.
Always exits 0: it reports, it does not gate.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from _common import REPO_ROOT, Target, emit_json, median, print_table, print_targets

RUN_SNIPPET = "import sys; sys.argv[0] = 'lmstrix'; from lmstrix.cli import run; run()"
CONSOLE_TARGET_MS = 150.0
LITE_TARGET_MS = 60.0


def console_script() -> Optional[str]:
    """The ``lmstrix`` script of this interpreter's environment, if installed."""
    name = "lmstrix.exe" if os.name == "nt" else "lmstrix"
    folder = Path(sys.executable).parent
    for candidate in (folder / name, folder / "Scripts" / name):
        if candidate.is_file():
            return str(candidate)
    return None


def commands() -> Dict[str, List[str]]:
    """The command lines to time, by label."""
    python = sys.executable
    found = {
        "python -c pass": [python, "-c", "pass"],
        "lmstrix --help (run())": [python, "-c", RUN_SNIPPET, "--help"],
        "python -m lmstrix --help": [python, "-m", "lmstrix", "--help"],
    }
    script = console_script()
    if script is not None:
        found["lmstrix --help (console script)"] = [script, "--help"]
    return found


def time_once(argv: Sequence[str]) -> float:
    """Seconds one fresh process takes from start to exit."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    started = time.perf_counter()
    subprocess.run(
        list(argv),
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


def measure(runs: int) -> Dict[str, List[float]]:
    """Interleaved timings (seconds) of every command, after one warm-up round."""
    cmds = commands()
    for argv in cmds.values():
        time_once(argv)
    samples: Dict[str, List[float]] = {label: [] for label in cmds}
    for _ in range(runs):
        for label, argv in cmds.items():
            samples[label].append(time_once(argv))
    return samples


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark and print the table and the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per command")
    parser.add_argument("--quick", action="store_true", help="3 runs (for CI)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else max(1, args.runs)

    samples = measure(runs)
    base_ms = median(samples["python -c pass"]) * 1000
    rows = []
    figures: Dict[str, Dict[str, float]] = {}
    for label, values in samples.items():
        med_ms = median(values) * 1000
        added = med_ms - base_ms
        figures[label] = {"median_ms": med_ms, "min_ms": min(values) * 1000, "added_ms": added}
        rows.append([label, f"{med_ms:.1f}", f"{min(values) * 1000:.1f}", f"{added:+.1f}"])

    console_label = (
        "lmstrix --help (console script)"
        if "lmstrix --help (console script)" in figures
        else "lmstrix --help (run())"
    )
    targets = [
        Target(
            f"{console_label}, added",
            figures[console_label]["added_ms"],
            "<=",
            CONSOLE_TARGET_MS,
            " ms",
        ),
        Target(
            "python -m lmstrix --help, added",
            figures["python -m lmstrix --help"]["added_ms"],
            "<=",
            LITE_TARGET_MS,
            " ms",
        ),
    ]
    if args.json:
        emit_json(
            {
                "runs": runs,
                "python": sys.version.split()[0],
                "figures": figures,
                "targets": [t.to_dict() for t in targets],
            }
        )
        return 0
    print(f"CLI start-up, median of {runs} fresh processes (Python {sys.version.split()[0]})\n")
    print_table(["command", "median ms", "min ms", "added ms"], rows)
    if console_script() is None:
        print("(no `lmstrix` console script beside this interpreter: `pip install -e .`)\n")
    try:
        import click  # noqa: F401

        front = "click"
    except ImportError:
        front = "lite (click not installed)"
    print(f"lmstrix --help uses the {front} front end.\n")
    print_targets(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
