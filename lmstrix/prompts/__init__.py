"""Prompt templates: ``render`` and ``PromptLibrary`` (TOML or JSON prompt files)."""

from __future__ import annotations

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
    "PromptLibrary",
    "TemplateSyntaxError",
    "escape",
    "parse_assignments",
    "render",
]
