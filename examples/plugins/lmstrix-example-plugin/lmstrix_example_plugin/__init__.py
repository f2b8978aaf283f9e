"""An example lmstrix plugin: one of each thing a plugin may add.

The entry point (see pyproject.toml) names :data:`plugin`. lmstrix calls each of its
hooks once, when plugins are loaded (``lmstrix.plugins.load()``, or the CLI at start-up).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any, Callable, Dict, List

from lmstrix import CallEvent, Completion
from lmstrix.cli import Argument, Command, Option
from lmstrix.prompts import PromptFormat

LOG_ENV = "LMSTRIX_EXAMPLE_PLUGIN_LOG"


class CallLog:
    """An observer: a line per model call (operation, model, outcome) in the log file."""

    def __call__(self, event: CallEvent) -> None:
        path = os.environ.get(LOG_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(f"{event.operation} {event.model} {event.outcome}\n")


def shout(done: Completion) -> Completion:
    """A post-processor: the answer in capitals."""
    return replace(done, text=done.text.upper())


def tag(request: Any, call_next: Callable[[Any], Any]) -> Any:
    """A middleware: marks every request with a header."""
    headers = dict(request.headers)
    headers["X-Lmstrix-Example"] = "1"
    return call_next(request.replace(headers=headers))


def dollar_to_braces(template: str) -> str:
    """``$name`` and ``$persona.short`` -> ``{{name}}``, ``{{persona.short}}``."""
    return re.sub(r"\$([A-Za-z_][\w.]*)", r"{{\1}}", template)


class ExamplePlugin:
    """The plugin object: each method is a hook lmstrix looks for."""

    def cli_commands(self) -> List[Command]:
        return [
            Command(
                "hello",
                "say hello from the example plugin",
                "lmstrix_example_plugin.cli",
                "cmd_hello",
                (Argument("name", "NAME", "?"),),
                (Option("shout", ("--shout",), "in capitals", kind="flag"),),
            )
        ]

    def observers(self) -> List[Any]:
        return [CallLog()]

    def post_processors(self) -> Dict[str, Callable[[Completion], Completion]]:
        return {"shout": shout}

    def middleware(self) -> List[Any]:
        return [tag]

    def prompt_formats(self) -> List[PromptFormat]:
        return [PromptFormat("dollar-json", (".djson",), convert=dollar_to_braces)]

    def routers(self) -> Dict[str, Callable[[Any], Any]]:
        return {"reverse": lambda candidate: -candidate.position}


plugin = ExamplePlugin()
