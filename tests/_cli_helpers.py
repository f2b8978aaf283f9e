"""What the CLI tests share: both front ends, as ``(name, main)`` pairs, and running one."""

from __future__ import annotations

from typing import Callable, List, Tuple

import pytest

from lmstrix.cli import main as lite_main

Entry = Callable[[List[str]], int]


def front_ends() -> List[Tuple[str, Entry]]:
    """The lite CLI, and the click one when click is installed (the dev install has it)."""
    entries: List[Tuple[str, Entry]] = [("lite", lite_main)]
    try:
        from lmstrix.cli import click_app
    except ImportError:  # pragma: no cover - the [cli] extra is in the dev install
        return entries
    return [*entries, ("click", click_app.main)]


def run_cli(capsys: pytest.CaptureFixture[str], entry: Entry, *args: str) -> Tuple[int, str, str]:
    """Run ``entry`` with ``args``: its exit code, stdout and stderr."""
    capsys.readouterr()
    code = entry(list(args))
    out, err = capsys.readouterr()
    return code, out, err
