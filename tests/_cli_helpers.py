"""What the CLI tests share: both front ends, as ``(name, main)`` pairs."""

from __future__ import annotations

from typing import Callable, List, Tuple

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
