"""The option table's entries for observing and governing calls: audit, cache, metrics.

Part of the one table of :mod:`lmstrix.cli._options` (which takes these in), kept
apart to keep modules short: the global ``--audit``/``--label``, ``--cache`` (``chat``,
``batch``), ``--metrics-out`` (``batch``, ``test``) and the ``audit verify`` and
``stats`` commands, implemented in :mod:`lmstrix.cli._cmd_observe`.
"""

from __future__ import annotations

from typing import Dict, Tuple

from ._params import Argument, Command, Option

__all__ = ["AUDIT_OPTIONS", "CACHE", "METRICS_OUT", "OBSERVE_COMMANDS", "OBSERVE_GROUPS"]

#: Global options: every model call of the command is written to an audit log.
AUDIT_OPTIONS: Tuple[Option, ...] = (
    Option(
        "audit",
        ("--audit",),
        "append one hash-chained line per model call to FILE (check it with "
        "'lmstrix audit verify FILE')",
        metavar="FILE",
    ),
    Option(
        "label",
        ("--label",),
        "who the calls are for: the label of each request and audit line",
        metavar="NAME",
    ),
)

CACHE = Option(
    "cache",
    ("--cache",),
    "answer repeated deterministic requests (temperature 0 or a seed) from this SQLite "
    "file; -v counts hits and misses",
    metavar="PATH",
)

POST = Option(
    "post",
    ("--post",),
    "apply a post-processor to each answer (repeatable, in order): strip-reasoning, "
    "extract-code, json, or one a plugin adds (lmstrix plugins)",
    metavar="NAME",
    multiple=True,
)

METRICS_OUT = Option(
    "metrics_out",
    ("--metrics-out",),
    "write the run's metrics snapshot (JSON) to FILE ('lmstrix stats FILE' shows it)",
    metavar="FILE",
)

OBSERVE_GROUPS: Dict[str, str] = {"audit": "audit logs"}

OBSERVE_COMMANDS: Tuple[Command, ...] = (
    Command(
        "audit verify",
        "check an audit log's hash chain (exit 1 when a line was edited, removed or reordered)",
        "_cmd_observe",
        "cmd_audit_verify",
        (Argument("file", "FILE"),),
        (
            Option(
                "expected_head",
                ("--head",),
                "a head reported earlier: lines cut off the end are caught too",
                metavar="HASH",
            ),
        ),
    ),
    Command(
        "stats",
        "show a metrics snapshot written by --metrics-out",
        "_cmd_observe",
        "cmd_stats",
        (Argument("file", "FILE"),),
        (
            Option(
                "prometheus",
                ("--prometheus",),
                "in Prometheus' text format (histograms as summaries)",
                kind="flag",
            ),
        ),
    ),
)
