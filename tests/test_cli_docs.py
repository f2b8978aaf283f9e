"""docs/user-guide/cli.md covers every command of both front ends, each with an example."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, List, Set

import pytest

from lmstrix.cli._lite import COMMANDS, build_parser

DOC = Path(__file__).resolve().parents[1] / "docs" / "user-guide" / "cli.md"


def _documented() -> Set[str]:
    """Commands with a section of their own (``### `lmstrix NAME ...` ``)."""
    found = set()
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"### `lmstrix ([a-z]+(?: [a-z]+)?)", line)
        if match:
            words = match.group(1).split()
            found.add(" ".join(w for w in words if w in _all_words()))
    return found


def _all_words() -> Set[str]:
    return {word for name in COMMANDS for word in name.split()}


def _lite_commands() -> List[str]:
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    names: List[str] = []
    for name, sub in subs.choices.items():
        inner = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        names += [f"{name} {n}" for n in inner[0].choices] if inner else [name]
    return names


def test_every_lite_command_is_documented() -> None:
    commands = _lite_commands()
    assert set(commands) == set(COMMANDS)
    assert set(commands) <= _documented()


def test_every_click_command_is_documented() -> None:
    pytest.importorskip("click")
    from lmstrix.cli.click_app import cli

    def walk(group: Any, prefix: str = "") -> List[str]:
        names: List[str] = []
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                names += walk(command, f"{prefix}{name} ")
            else:
                names.append(prefix + name)
        return names

    assert set(walk(cli)) <= _documented()


def test_every_command_section_has_an_example() -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    assert len(sections) == len(COMMANDS)
    for section in sections:
        title = section.splitlines()[0]
        assert "```" in section, title
        assert "$ lmstrix" in section, title


def test_the_environment_variables_and_exit_codes_are_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in (
        "LMSTRIX_SERVER",
        "LMSTRIX_REGISTRY",
        "LMSTRIX_HOME",
        "LM_API_TOKEN",
        "LMSTUDIO_API_TOKEN",
        "_LMSTRIX_COMPLETE=bash_source",
        "_LMSTRIX_COMPLETE=zsh_source",
        "_LMSTRIX_COMPLETE=fish_source",
    ):
        assert name in text, name
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 130 |"):
        assert code in text
