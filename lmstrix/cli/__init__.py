"""The command line: ``lmstrix`` and the zero-dependency ``python -m lmstrix``.

Each command is implemented once (in ``lmstrix.cli._commands``) and takes plain
arguments; only argument parsing differs between front ends. This package imports
nothing outside the standard library.
"""

from __future__ import annotations

from ._lite import main

__all__ = ["main", "run"]


def run() -> None:
    """Console-script entry point: run the CLI and exit with its code."""
    import sys

    sys.exit(main())
