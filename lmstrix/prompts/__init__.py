"""Prompt templates: ``render`` and ``PromptLibrary`` (TOML or JSON prompt files)."""

from __future__ import annotations

from ._files import PromptFormat
from ._render import (
    ESCAPE,
    PromptLibrary,
    TemplateSyntaxError,
    escape,
    parse_assignments,
    render,
)

__all__ = [
    "ESCAPE",
    "PromptFormat",
    "PromptLibrary",
    "TemplateSyntaxError",
    "escape",
    "parse_assignments",
    "render",
]
