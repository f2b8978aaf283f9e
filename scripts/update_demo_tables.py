"""Check or rewrite the ``lmstrix demo`` tables of the README and docs/index.md.

    python scripts/update_demo_tables.py           # rewrite the tables from a demo run
    python scripts/update_demo_tables.py --check   # exit 1 if a table differs

Runs ``python -m lmstrix demo`` (the simulator: no server, no network beyond loopback)
and replaces each row of a table that starts with the demo's header line by the row of
the same model in the demo's output. A table may show fewer rows than the demo, ending
with ``...``. ``tests/test_docs_snippets.py`` checks that this script changes nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
PAGES_WITH_TABLES = ("README.md", "docs/index.md")
HEADER = "model                      declared  loadable  working  status  loads"


def demo_rows() -> Dict[str, str]:
    """The table rows ``lmstrix demo`` prints, by model key."""
    result = subprocess.run(
        [sys.executable, "-m", "lmstrix", "demo"],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = result.stdout.splitlines()
    start = lines.index(HEADER) + 2  # the header, then the rule
    rows: Dict[str, str] = {}
    for line in lines[start:]:
        if not line.strip():
            break
        rows[line.split()[0]] = line.rstrip()
    return rows


def update_tables(text: str, rows: Dict[str, str]) -> str:
    """``text`` with the rows of every demo table replaced by ``rows``.

    Raises:
        ValueError: a table names a model the demo did not print.
    """
    lines = text.split("\n")
    out: List[str] = []
    in_table = False
    for number, line in enumerate(lines, 1):
        if line == HEADER:
            in_table = True
        elif in_table and (line.startswith("```") or not line.strip() or line == "..."):
            in_table = False
        elif in_table and not set(line) <= {"-", " "}:
            key = line.split()[0]
            if key not in rows:
                raise ValueError(f"line {number}: the demo printed no row for {key}")
            out.append(rows[key])
            continue
        out.append(line)
    return "\n".join(out)


def main(argv: List[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print(__doc__, file=sys.stderr)
        return 2
    rows = demo_rows()
    stale = []
    for name in PAGES_WITH_TABLES:
        path = ROOT / name
        text = path.read_text(encoding="utf-8")
        updated = update_tables(text, rows)
        if updated != text:
            stale.append(name)
            if not check:
                path.write_text(updated, encoding="utf-8")
    verb = "stale" if check else "updated"
    print(f"{verb}: {', '.join(stale)}" if stale else "the demo tables are up to date")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
