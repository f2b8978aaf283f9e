"""Output rules of every command: results on stdout, progress and logs on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any, List, Optional, Sequence, TextIO

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def emit_json(document: Any, stream: Optional[TextIO] = None) -> None:
    """Print one JSON document (the only thing a ``--json`` command prints on stdout)."""
    out = stream or sys.stdout
    out.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    out.flush()


def note(message: str) -> None:
    """A progress or log line for people: always on stderr."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render rows as a plain aligned text table."""
    cells: List[List[str]] = [[str(h) for h in headers]]
    cells += [
        ["-" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in row]
        for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
