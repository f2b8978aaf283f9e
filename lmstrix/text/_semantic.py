"""The semantic splitter: cut a text where its meaning moves on.

Each sentence is embedded (by the server's embedding model, in batches); where the
cosine distance between consecutive sentences passes a threshold (by default a high
percentile of all the distances) the text is cut. A group still over the token budget
is then cut by the recursive splitter. Pure Python: no numpy.
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence

from ._split import (
    PARAGRAPH,
    SENTENCE,
    Chunk,
    Span,
    TokenCounter,
    _cuts,
    check_budget,
    estimate_counter,
    split_text,
)

__all__ = ["BATCH", "PERCENTILE", "cosine_distance", "percentile", "semantic_split"]

Embedder = Callable[[List[str]], List[List[float]]]

BATCH = 64
"""Sentences sent to ``embed`` in one call."""
PERCENTILE = 95.0
"""The default threshold: distances above this percentile of all of them cut."""


def cosine_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """``1 - cos(a, b)``: 0 for the same direction, 2 for opposite; 1 when one is zero."""
    if len(a) != len(b):
        raise ValueError(f"embeddings of different lengths ({len(a)} and {len(b)})")
    dot = sum(x * y for x, y in zip(a, b))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return 1.0 - (dot / norms if norms else 0.0)


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile of ``values`` (linear interpolation, like numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * pct / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def sentences(text: str) -> List[Span]:
    """The sentence spans of ``text`` (paragraph breaks end a sentence too)."""
    spans: List[Span] = []
    for paragraph in _cuts(PARAGRAPH, text, 0, len(text)):
        spans.extend(_cuts(SENTENCE, text, *paragraph))
    return spans


def _embed_all(embed: Embedder, texts: List[str]) -> List[List[float]]:
    vectors: List[List[float]] = []
    for begin in range(0, len(texts), BATCH):
        batch = texts[begin : begin + BATCH]
        got = list(embed(batch))
        if len(got) != len(batch):
            raise ValueError(f"embed returned {len(got)} vectors for {len(batch)} texts")
        vectors.extend(got)
    return vectors


def semantic_split(
    text: str,
    *,
    embed: Embedder,
    max_tokens: int,
    threshold: Optional[float] = None,
    count_tokens: Optional[TokenCounter] = None,
) -> List[Chunk]:
    """Split ``text`` where consecutive sentences' embeddings drift apart.

    Args:
        text: the source.
        embed: embeds a list of texts, e.g. ``lambda xs: client.embed(model, xs)``;
            called with up to :data:`BATCH` sentences at a time.
        max_tokens: the budget of one chunk; a group of sentences over it is cut by
            :func:`split_text`.
        threshold: the cosine distance (0 to 2) above which the text is cut; by default
            the :data:`PERCENTILE` percentile of the distances in this text.
        count_tokens: counts a text's tokens; by default an estimate from its characters.

    Returns:
        Chunks as :func:`split_text` gives them (exact slices, in order, covering the
        text), without overlap.
    """
    check_budget(max_tokens, 0)
    if not text:
        return []
    count = count_tokens if count_tokens is not None else estimate_counter()
    spans = sentences(text)
    cuts: List[int] = []
    if len(spans) > 1:
        vectors = _embed_all(embed, [text[a:b].strip() or text[a:b] for a, b in spans])
        distances = [cosine_distance(x, y) for x, y in zip(vectors, vectors[1:])]
        limit = percentile(distances, PERCENTILE) if threshold is None else threshold
        cuts = [spans[k + 1][0] for k, d in enumerate(distances) if d > limit]
    chunks: List[Chunk] = []
    for start, end in zip([0, *cuts], [*cuts, len(text)]):
        for part in split_text(text[start:end], max_tokens=max_tokens, count_tokens=count):
            begin, stop = start + part.start, start + part.end
            chunks.append(Chunk(text[begin:stop], begin, stop, len(chunks)))
    return chunks
