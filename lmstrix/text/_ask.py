"""Ask a question about a document of any length, within a model's tested working context.

Two ways: ``mode="map"`` asks every chunk the question (the map step, resumable on the
batch runner) and combines the answers round after round until one is left, like
:func:`~lmstrix.text.summarize`; ``mode="extractive"`` ranks smaller chunks by how close
their embeddings are to the question's (cosine, pure Python), keeps the best that fit one
request, puts them back in document order, and asks once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

from ..errors import ConfigError
from ._mapreduce import (
    SEPARATOR,
    Budget,
    ProgressCallback,
    StateRunner,
    calibrate,
    check_room,
    open_run,
    reduce_all,
    resolve_budget,
    suffix,
)
from ._semantic import _embed_all, cosine_distance
from ._split import Chunk, split_text

__all__ = [
    "ASK_MODES",
    "ASK_PROMPT",
    "DEFAULT_ANSWER_TOKENS",
    "EXTRACT_CHUNK_TOKENS",
    "AskResult",
    "ask",
]

ASK_MODES = ("map", "extractive")
DEFAULT_ANSWER_TOKENS = 256
"""The longest answer asked of one request (``max_tokens``) unless told otherwise."""
EXTRACT_CHUNK_TOKENS = 512
"""The size of the chunks extractive mode ranks (at most what fits one request)."""

ASK_PROMPT = (
    "Answer the question from these passages of a document only. If they do not hold "
    "the answer, say NOTHING.{instructions}\n\nQuestion: {question}\n\nPassages:\n{text}"
)
MAP_PROMPT = (
    "Answer the question from this part ({index} of {total}) of a longer document only. "
    "If this part does not hold the answer, say NOTHING.{instructions}\n\n"
    "Question: {question}\n\nPart:\n{text}"
)
REDUCE_PROMPT = (
    "These are answers to one question, each from one part of a document. Combine them "
    "into one answer, leaving out the parts that say NOTHING.{instructions}\n\n"
    "Question: {question}\n\nAnswers:\n{text}"
)


@dataclass(frozen=True)
class AskResult:
    """The answer to a question about a document, and how it was found.

    ``text`` is the answer; ``chunks`` the pieces of the document; in map mode
    ``levels`` holds each step's answers (one per chunk first, the last only ``text``);
    in extractive mode ``selected`` holds the chunks that were sent, in document order,
    and ``scores`` every chunk's cosine similarity to the question (by chunk index).
    ``requests`` counts the chat requests this call sent.
    """

    text: str
    mode: str
    chunks: List[Chunk]
    levels: List[List[str]]
    requests: int
    working_context: int
    selected: List[Chunk] = field(default_factory=list)
    scores: List[float] = field(default_factory=list)
    state: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary (chunks as their offsets)."""
        return {
            "text": self.text,
            "mode": self.mode,
            "chunks": [{"index": c.index, "start": c.start, "end": c.end} for c in self.chunks],
            "levels": [len(level) for level in self.levels],
            "selected": [c.index for c in self.selected],
            "requests": self.requests,
            "working_context": self.working_context,
            "state": self.state,
        }


def ask(
    client_or_pool: Any,
    model: str,
    text: str,
    question: str,
    *,
    mode: str = "map",
    embedding_model: Optional[str] = None,
    max_tokens: int = DEFAULT_ANSWER_TOKENS,
    instructions: Optional[str] = None,
    state: Union[str, os.PathLike[str], None] = None,
    workers: Optional[int] = None,
    on_progress: Optional[ProgressCallback] = None,
    working_context: Optional[int] = None,
    chunk_tokens: Optional[int] = None,
    params: Optional[Mapping[str, Any]] = None,
) -> AskResult:
    """Answer ``question`` about ``text`` with ``model``, in requests that all fit.

    Args:
        client_or_pool, model, max_tokens, instructions, state, workers, on_progress,
            working_context, params: as for :func:`~lmstrix.text.summarize`.
        text: the document.
        question: what to ask.
        mode: ``"map"`` (ask every chunk, combine the answers) or ``"extractive"``
            (send only the chunks closest to the question; needs ``embedding_model``).
        embedding_model: the server's embedding model, for ``"extractive"``.
        chunk_tokens: the size of the chunks ranked in extractive mode (default
            :data:`EXTRACT_CHUNK_TOKENS`, at most what fits one request).

    Raises:
        ConfigError: a bad mode, no embedding model for extractive mode, no tested
            working context for ``model``, or ``max_tokens`` too large for it.
        LMStrixError: requests failed (run again with the same ``state`` to retry them).
    """
    if mode not in ASK_MODES:
        raise ConfigError(f"mode must be one of {', '.join(ASK_MODES)}, not {mode!r}")
    if not question or not question.strip():
        raise ConfigError("the question is empty: say what to ask about the document")
    if mode == "extractive" and not embedding_model:
        raise ConfigError(
            "extractive mode ranks the document's chunks by embedding: name the server's "
            "embedding model (embedding_model=..., or --embedding-model on the CLI)"
        )
    budget = resolve_budget(client_or_pool, model, max_tokens, working_context)
    extra = suffix(instructions)
    question = " ".join(question.split())
    with open_run(
        client_or_pool,
        model,
        budget,
        ("ask", mode, text, question, extra),
        state=state,
        workers=workers,
        params=params,
        on_progress=on_progress,
    ) as runner:
        budget = calibrate(runner, budget, text)
        if mode == "map":
            return _ask_map(runner, budget, text, question, extra)
        assert embedding_model is not None
        return _ask_extractive(runner, budget, text, question, extra, embedding_model, chunk_tokens)


def _ask_map(
    runner: StateRunner, budget: Budget, text: str, question: str, extra: str
) -> AskResult:
    fill = {"instructions": extra, "question": question}
    room = budget.room(MAP_PROMPT.format(index=0, total=0, text="", **fill))
    check_room(budget, room, "question")
    chunks = split_text(text, max_tokens=room, count_tokens=budget.count)
    prompts = [
        MAP_PROMPT.format(index=c.index + 1, total=len(chunks), text=c.text, **fill) for c in chunks
    ]
    answers = runner.run("map", 0, prompts)
    final, levels = reduce_all(
        runner,
        budget,
        answers,
        REDUCE_PROMPT.format(text="", **fill),
        lambda joined: REDUCE_PROMPT.format(text=joined, **fill),
    )
    return AskResult(
        final, "map", chunks, levels, runner.requests, budget.working_context, [], [], runner.kept
    )


def _ask_extractive(
    runner: StateRunner,
    budget: Budget,
    text: str,
    question: str,
    extra: str,
    embedding_model: str,
    chunk_tokens: Optional[int],
) -> AskResult:
    fill = {"instructions": extra, "question": question}
    room = budget.room(ASK_PROMPT.format(text="", **fill))
    if room < 1:
        raise ConfigError(
            f"max_tokens={budget.max_tokens:,} and the question leave no room for the "
            f"document in a working context of {budget.working_context:,}: lower max_tokens"
        )
    size = min(room, chunk_tokens or EXTRACT_CHUNK_TOKENS)
    chunks = split_text(text, max_tokens=size, count_tokens=budget.count)
    client = runner.client
    vectors = _embed_all(
        lambda xs: client.embed(embedding_model, xs), [question] + [c.text for c in chunks]
    )
    scores = [1.0 - cosine_distance(vectors[0], v) for v in vectors[1:]]
    ranked = sorted(chunks, key=lambda c: (-scores[c.index], c.index))
    chosen: List[Chunk] = []
    used = 0
    for chunk in ranked:
        cost = budget.count(chunk.text) + (budget.count(SEPARATOR) if chosen else 0)
        if used + cost <= room:
            chosen.append(chunk)
            used += cost
    chosen.sort(key=lambda c: c.index)
    prompt = ASK_PROMPT.format(text=SEPARATOR.join(c.text for c in chosen), **fill)
    answer = runner.run("answer", 0, [prompt])[0]
    return AskResult(
        answer,
        "extractive",
        chunks,
        [[answer]],
        runner.requests,
        budget.working_context,
        chosen,
        scores,
        runner.kept,
    )
