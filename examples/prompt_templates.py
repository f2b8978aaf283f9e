"""Render prompts from a prompt library: ``python examples/prompt_templates.py``.

It loads ``prompts.toml`` next to this file (or ``prompts.json`` on Python 3.8-3.10
without ``tomli``), renders a system prompt and a user prompt, and shows what happens
with a missing variable and with user text that looks like a placeholder. No server is
needed.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout

from lmstrix import MissingVariableError, PromptLibrary, TemplateError, render
from lmstrix.prompts import parse_assignments

HERE = os.path.dirname(os.path.abspath(__file__))


def load_library() -> PromptLibrary:
    """The TOML library when a TOML parser is available, else the same library in JSON."""
    try:
        return PromptLibrary.from_file(os.path.join(HERE, "prompts.toml"))
    except TemplateError as exc:  # Python 3.8-3.10 without tomli
        print(f"(TOML not available: {exc}; using prompts.json)\n")
        return PromptLibrary.from_file(os.path.join(HERE, "prompts.json"))


def main() -> None:
    """Print a rendered system and user prompt, then two things that go wrong."""
    library = load_library()
    print("Entries:", ", ".join(library.names()), "\n")

    # Variables as a CLI would get them: --var student.name=Ada --var language=Python
    variables = parse_assignments(["student.name=Ada", "language=Python"])
    # Text from the user is inserted literally, even if it looks like a placeholder.
    variables["code"] = 'print("{{persona.short}}")'

    print("--- system ---")
    print(library.render("review.system", variables))
    print("--- user ---")
    print(library.render("review.user", variables))
    print("--- escape ---")
    print(library.render("jinja_note.text"))

    print("--- a plain string template that uses the library ---")
    print(render("{{persona.short}} for {{student.name}}", variables, library=library))

    print("--- missing variables are all reported at once ---")
    try:
        library.render("review.user")
    except MissingVariableError as exc:
        print(f"MissingVariableError: {exc}")
    print("--- or left in place with strict=False ---")
    print(library.render("review.user", {"language": "Rust"}, strict=False))


if __name__ == "__main__":
    main()
