"""Prefix ordering: run the items that share a rendered prompt prefix back to back.

A server keeps the prompt it processed last (LM Studio and llama.cpp: per parallel slot)
and reuses the longest common prefix with the next prompt, so only the new tail costs
prompt-processing time. Items rendered from a template, or that share a system prompt or
a long document, share their prompt's head; when they arrive interleaved, each request
evicts the prefix the next one needs. Sorting the rendered prompts puts every group of
prompts sharing a prefix next to each other (lexicographic order is a depth-first walk
of their prefix tree), and handing contiguous runs of that order to the workers keeps
each run on one worker. The output is keyed by item id, so the order in which items run
changes nothing for resume. Standard library only.
"""

from __future__ import annotations

import math
import os
from typing import Any, List, Mapping, Optional, Sequence, Tuple, TypeVar

from ..errors import ConfigError

__all__ = [
    "ORDERS",
    "blocks",
    "order_jobs",
    "prefix_order",
    "prompt_text",
    "resolve_order",
    "shared_prefix_share",
]

T = TypeVar("T")

ORDERS = ("prefix", "input")
"""The orders :func:`~lmstrix.batch.run_batch` accepts."""

_RUNS_PER_WORKER = 4  # blocks per worker: short enough to balance, long enough to reuse


def resolve_order(order: Optional[str], *, templated: bool) -> str:
    """``order`` checked, or the default: ``"prefix"`` for templated items, else ``"input"``.

    Raises:
        ConfigError: ``order`` is not one of :data:`ORDERS`.
    """
    if order is None:
        return "prefix" if templated else "input"
    if order not in ORDERS:
        raise ConfigError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    return order


def prompt_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text a chat request's prompt starts with, message by message (role, content)."""
    parts = []
    for message in messages:
        content = message.get("content")
        parts.append(f"{message.get('role')}\x1f{content if isinstance(content, str) else ''}")
    return "\x1e".join(parts)


def prefix_order(texts: Sequence[str]) -> List[int]:
    """Indices of ``texts`` sorted so that texts sharing a prefix are adjacent (stable)."""
    return sorted(range(len(texts)), key=texts.__getitem__)


def _shared(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))  # noqa: RUF071 (text, not paths)


def shared_prefix_share(texts: Sequence[str]) -> float:
    """The share (0 to 1) of the prompts' characters that repeat the previous prompt's head.

    Run in this order on one cache, that much of the prompt text is a cache hit: an
    estimate of the prompt processing (and so time to first token) that ordering saves.
    """
    total = sum(len(t) for t in texts)
    if not total:
        return 0.0
    return sum(_shared(a, b) for a, b in zip(texts, texts[1:])) / total


def blocks(
    ordered: Sequence[T], workers: int, texts: Optional[Sequence[str]] = None
) -> List[List[T]]:
    """``ordered`` cut into contiguous runs, about :data:`_RUNS_PER_WORKER` per worker.

    A worker takes a whole run at a time, so neighbours in the order (which share the
    most prefix) go to the same worker one after the other. With ``texts`` (the prompts,
    in the same order) a run also ends where a group ends: where a prompt shares less
    than half of itself with the one before.
    """
    size = max(1, math.ceil(len(ordered) / (max(1, workers) * _RUNS_PER_WORKER)))
    runs: List[List[T]] = []
    run: List[T] = []
    for i, item in enumerate(ordered):
        new_group = False
        if texts is not None and i:
            a, b = texts[i - 1], texts[i]
            new_group = 2 * _shared(a, b) < min(len(a), len(b))
        if run and (len(run) >= size or new_group):
            runs.append(run)
            run = []
        run.append(item)
    if run:
        runs.append(run)
    return runs


def order_jobs(
    jobs: Sequence[T], texts: Sequence[str], workers: int
) -> Tuple[List[List[T]], float, float]:
    """``jobs`` in prefix order, cut into runs (:func:`blocks`), with the shared-prefix
    share (:func:`shared_prefix_share`) before and after ordering."""
    order = prefix_order(texts)
    sorted_texts = [texts[i] for i in order]
    runs = blocks([jobs[i] for i in order], workers, sorted_texts)
    return runs, shared_prefix_share(texts), shared_prefix_share(sorted_texts)
