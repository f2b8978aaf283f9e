"""The command line: ``lmstrix`` and the zero-dependency ``python -m lmstrix``.

Each command is implemented once (``lmstrix.cli._cmd_*``, ``_demo``) as a plain
function of a :class:`~lmstrix.cli._session.Session` and plain arguments; only argument
parsing differs between the click front end (``click_app``, used by the ``lmstrix``
console script when click is installed) and the argparse one (``_lite``, used by
``python -m lmstrix`` and by the console script without click). Importing this package
imports nothing outside the standard library.

Plugins add commands with :class:`Command`, :class:`Argument` and :class:`Option` (see
``docs/user-guide/plugins.md``): the command function is
``function(session, **arguments) -> int``, where ``session`` has ``as_json``,
``emit(document)``, ``echo(text)``, ``note(text)`` and ``client()``.
"""

from __future__ import annotations

import sys
from typing import List, Optional

from ._params import Argument, Command, Option

__all__ = ["Argument", "Command", "Option", "main", "run"]


def main(argv: Optional[List[str]] = None) -> int:
    """The lite (argparse) CLI; returns the exit code."""
    from ._lite import main as lite_main

    return lite_main(argv)


def run() -> None:
    """Console-script entry point: the click CLI when click is installed, else the lite one."""
    try:
        from .click_app import main as click_main
    except ImportError as exc:
        if exc.name != "click":
            raise
        sys.exit(main())
    sys.exit(click_main())
