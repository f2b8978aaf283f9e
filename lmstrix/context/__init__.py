"""The context-limit search: ``find_context_limit`` (the runner), its strategy and probe."""

from __future__ import annotations

from ._runner import ContextReport, SearchProgress, find_context_limit
from ._servers import ServerSearch, find_context_limits

__all__ = [
    "ContextReport",
    "SearchProgress",
    "ServerSearch",
    "find_context_limit",
    "find_context_limits",
]
