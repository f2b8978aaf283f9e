"""Run many prompts through one model with a pool of threads; resumable, crash-safe.

Standard library only; not imported by ``lmstrix`` itself. See ``docs/user-guide/batch.md``
and :func:`run_batch`.
"""

from __future__ import annotations

from ._runner import (
    DEFAULT_WORKERS,
    BatchProgress,
    BatchSummary,
    default_workers,
    read_items,
    run_batch,
)

__all__ = [
    "DEFAULT_WORKERS",
    "BatchProgress",
    "BatchSummary",
    "default_workers",
    "read_items",
    "run_batch",
]
