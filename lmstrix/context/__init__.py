"""The context-limit search: ``find_context_limit`` (the runner), its strategy and probe."""

from __future__ import annotations

from ._runner import ContextReport, SearchProgress, find_context_limit

__all__ = ["ContextReport", "SearchProgress", "find_context_limit"]
