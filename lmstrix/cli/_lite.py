"""``python -m lmstrix``: the standard-library-only command line (argparse).

It offers the commands that need no extra; the ``lmstrix`` console script uses it
too until the click front end lands.
"""

from __future__ import annotations

import argparse
import logging
from typing import List, Optional

from ._output import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, note


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the lite CLI."""
    parser = argparse.ArgumentParser(
        prog="lmstrix",
        description="Find the real context limits of your LM Studio models, and use them.",
    )
    parser.add_argument("--json", action="store_true", help="machine output (one JSON document)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run the whole job on the built-in simulator")
    demo.add_argument("--trials", type=int, default=3, help="needles per size (default 3)")
    demo.add_argument("--json", action="store_true", dest="json_sub", help=argparse.SUPPRESS)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 failure, 2 usage, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    level = logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    as_json = bool(args.json or getattr(args, "json_sub", False))
    from ..errors import LMStrixError

    try:
        if args.command == "demo":
            from ._demo import run_demo

            return run_demo(as_json=as_json, trials=args.trials)
        parser.print_help()
        return EXIT_USAGE
    except KeyboardInterrupt:
        note("interrupted")
        return EXIT_INTERRUPTED
    except LMStrixError as exc:
        note(f"error: {exc}")
        return EXIT_FAILURE
