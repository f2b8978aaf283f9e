"""Summarize a document of any length within a model's tested working context (map-reduce).

The document is split into chunks that fit one request (prompt, instructions and the
answer's ``max_tokens`` inside the registry's tested working context); each chunk is
summarized (the map step, on the batch runner, resumable through ``state``); then the
partial summaries are grouped so that each group fits one request and summarized
together, round after round, until one summary is left. Every partial summary is in
exactly one group, so every chunk's content reaches the reduce step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Union

from ._mapreduce import (
    ProgressCallback,
    calibrate,
    check_room,
    open_run,
    reduce_all,
    resolve_budget,
    suffix,
)
from ._split import Chunk, split_text

__all__ = ["DEFAULT_SUMMARY_TOKENS", "MAP_PROMPT", "REDUCE_PROMPT", "SummaryResult", "summarize"]

DEFAULT_SUMMARY_TOKENS = 512
"""The longest answer asked of one request (``max_tokens``) unless told otherwise."""

MAP_PROMPT = (
    "Summarize this part ({index} of {total}) of a longer document. Keep names, numbers "
    "and facts exactly.{instructions}\n\n{text}"
)
REDUCE_PROMPT = (
    "These are summaries of consecutive parts of one document. Combine them into one "
    "summary. Keep names, numbers and facts exactly.{instructions}\n\n{text}"
)


@dataclass(frozen=True)
class SummaryResult:
    """A document's summary and how it was made.

    ``text`` is the summary; ``chunks`` the pieces of the document (character offsets
    into it); ``levels`` the texts of each step: ``levels[0]`` one partial summary per
    chunk, then one list per reduce round, the last holding only ``text``.
    ``requests`` counts the requests this call sent (answers read back from the state
    file of an earlier run are not counted); ``working_context`` is the per-request
    budget used.
    """

    text: str
    chunks: List[Chunk]
    levels: List[List[str]]
    requests: int
    working_context: int
    state: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary (chunks as their offsets)."""
        return {
            "text": self.text,
            "chunks": [{"index": c.index, "start": c.start, "end": c.end} for c in self.chunks],
            "levels": [len(level) for level in self.levels],
            "requests": self.requests,
            "working_context": self.working_context,
            "state": self.state,
        }


def summarize(
    client_or_pool: Any,
    model: str,
    text: str,
    *,
    max_tokens: int = DEFAULT_SUMMARY_TOKENS,
    instructions: Optional[str] = None,
    state: Union[str, os.PathLike[str], None] = None,
    workers: Optional[int] = None,
    on_progress: Optional[ProgressCallback] = None,
    working_context: Optional[int] = None,
    params: Optional[Mapping[str, Any]] = None,
) -> SummaryResult:
    """Summarize ``text`` with ``model``, however long it is, in requests that all fit.

    Args:
        client_or_pool: a :class:`~lmstrix.Client` or :class:`~lmstrix.Pool` with a
            registry holding ``model``'s tested working context.
        model: the model key.
        text: the document.
        max_tokens: the longest answer of one request (each partial summary).
        instructions: added to every prompt (e.g. "Write in French.").
        state: a JSONL file keeping every answer (the batch runner's output): a run
            killed part-way continues from it when called again with the same arguments,
            without asking again what was answered. Default: a temporary file.
        workers: requests at once (default: the parallel slots of the loaded instances).
        on_progress: called with a :class:`MapReduceProgress` after each request.
        working_context: the per-request budget in tokens, instead of the registry's.
        params: more request parameters (``temperature``...).

    Raises:
        ConfigError: no tested working context for ``model``, or ``max_tokens`` too
            large for it.
        LMStrixError: requests failed (run again with the same ``state`` to retry them).
    """
    budget = resolve_budget(client_or_pool, model, max_tokens, working_context)
    extra = suffix(instructions)
    map_template = MAP_PROMPT.format(index=0, total=0, instructions=extra, text="")
    check_room(budget, budget.room(map_template), "summary")
    what = ("summarize", text, extra)
    with open_run(
        client_or_pool,
        model,
        budget,
        what,
        state=state,
        workers=workers,
        params=params,
        on_progress=on_progress,
    ) as runner:
        budget = calibrate(runner, budget, text)
        room = budget.room(map_template)
        check_room(budget, room, "summary")
        chunks = split_text(text, max_tokens=room, count_tokens=budget.count)
        prompts = [
            MAP_PROMPT.format(index=c.index + 1, total=len(chunks), instructions=extra, text=c.text)
            for c in chunks
        ]
        partials = runner.run("map", 0, prompts)
        reduce_template = REDUCE_PROMPT.format(instructions=extra, text="")
        final, levels = reduce_all(
            runner,
            budget,
            partials,
            reduce_template,
            lambda joined: REDUCE_PROMPT.format(instructions=extra, text=joined),
        )
        return SummaryResult(
            final, chunks, levels, runner.requests, budget.working_context, runner.kept
        )
