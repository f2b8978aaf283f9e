"""The recursive splitter: a text cut into chunks that each fit a token budget.

A text is cut at paragraph breaks first; a paragraph over the budget at its sentence
ends; a sentence over the budget between words; a word over the budget into runs of
characters (the last resort). The pieces are then packed, in order, into chunks of at
most ``max_tokens``; each chunk after the first starts ``overlap_tokens`` (at most,
counted in whole words) before the previous one ends. Every chunk is an exact slice of
the source: ``chunk.text == source[chunk.start:chunk.end]``.

Tokens are counted by a callable ``str -> int``: the target model's calibrated estimate
(:func:`~lmstrix.text.token_counter`) or any tokenizer the caller has.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Pattern, Sequence, Tuple

__all__ = ["Chunk", "TokenCounter", "estimate_counter", "split_text"]

TokenCounter = Callable[[str], int]
"""Counts the tokens of a text (in the target model's tokens, or an upper estimate)."""

Span = Tuple[int, int]

# Cut points, finest last. Each pattern matches the separator; the cut is at its end,
# so a piece keeps its trailing separator and the pieces cover the text exactly.
PARAGRAPH: Pattern[str] = re.compile(r"\n[ \t]*\n\s*")
SENTENCE: Pattern[str] = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")
WORD: Pattern[str] = re.compile(r"\s+")
LEVELS: Tuple[Pattern[str], ...] = (PARAGRAPH, SENTENCE, WORD)


@dataclass(frozen=True)
class Chunk:
    """One piece of a source text: ``text == source[start:end]``; ``index`` counts from 0."""

    text: str
    start: int
    end: int
    index: int


def estimate_counter(chars_per_token: Optional[float] = None) -> TokenCounter:
    """An upper estimate of a text's tokens from its characters (no tokenizer needed).

    Uses the registry's margin and default (``chars_per_token`` when given, else a low
    3 characters per token, so the estimate errs high).
    """
    from ..registry._fit import DEFAULT_CHARS_PER_TOKEN, SAFETY

    cpt = chars_per_token if chars_per_token and chars_per_token > 0 else DEFAULT_CHARS_PER_TOKEN

    def count(text: str) -> int:
        return math.ceil(round(len(text) / cpt * SAFETY, 9))  # no float dust over a whole

    return count


def _cuts(pattern: Pattern[str], text: str, start: int, end: int) -> Iterator[Span]:
    """The spans of ``text[start:end]`` cut after each match of ``pattern``."""
    begin = start
    for match in pattern.finditer(text, start, end):
        if match.end() >= end or match.end() == begin:
            continue
        yield begin, match.end()
        begin = match.end()
    yield begin, end


def _characters(text: str, start: int, end: int, budget: int, count: TokenCounter) -> List[Span]:
    """Cut ``text[start:end]`` into the longest runs of characters that fit ``budget``."""
    spans: List[Span] = []
    begin = start
    while begin < end:
        low, high = begin + 1, end  # the longest run [begin, stop) that fits
        if count(text[begin:low]) > budget:
            raise ValueError(
                f"max_tokens={budget} cannot hold even one character ({text[begin]!r})"
            )
        while low < high:
            mid = (low + high + 1) // 2
            if count(text[begin:mid]) <= budget:
                low = mid
            else:
                high = mid - 1
        spans.append((begin, low))
        begin = low
    return spans


def pieces(text: str, span: Span, budget: int, count: TokenCounter, level: int = 0) -> List[Span]:
    """Cut ``text[span]`` into consecutive spans of at most ``budget`` tokens each,
    at the coarsest boundaries that make each fit."""
    start, end = span
    if count(text[start:end]) <= budget:
        return [span]
    if level >= len(LEVELS):
        return _characters(text, start, end, budget, count)
    out: List[Span] = []
    for part in _cuts(LEVELS[level], text, start, end):
        out.extend(pieces(text, part, budget, count, level + 1))
    return out


def _overlap_start(
    text: str, previous: Chunk, first: Span, overlap: int, budget: int, count: TokenCounter
) -> int:
    """Where the next chunk starts: as many whole words back from ``previous.end`` as
    fit in ``overlap`` tokens while the next chunk's first piece still fits ``budget``."""
    end = previous.end
    best = end
    for match in _word_starts_backwards(text, previous.start, end):
        if count(text[match:end]) > overlap or count(text[match : first[1]]) > budget:
            break
        best = match
    return best


def _word_starts_backwards(text: str, start: int, end: int) -> Iterator[int]:
    """The starts of the words of ``text[start:end]``, last first, never ``start`` itself
    (a chunk that repeated all of the one before would be no progress)."""
    starts = [m.end() for m in WORD.finditer(text, start, end) if start < m.end() < end]
    return reversed(starts)


def pack(
    text: str, spans: Sequence[Span], budget: int, overlap: int, count: TokenCounter
) -> List[Chunk]:
    """Pack consecutive ``spans`` (each within ``budget``) into chunks of ``budget``.

    Pieces are added while the sum of their counts fits; the chunk is then counted
    whole and, should the counter not be additive, shortened piece by piece to fit, or
    lengthened while the whole still fits (a sum of rounded-up counts is high).
    """
    chunks: List[Chunk] = []
    i = 0
    start = spans[0][0] if spans else 0
    while i < len(spans):
        total = count(text[start : spans[i][1]])  # fits: pieces() and the overlap saw to it
        j = i + 1
        while j < len(spans):
            more = count(text[spans[j][0] : spans[j][1]])
            if total + more > budget:
                break
            total += more
            j += 1
        while j > i + 1 and count(text[start : spans[j - 1][1]]) > budget:
            j -= 1
        j = _extend(text, spans, start, j, budget, count)
        end = spans[j - 1][1]
        chunk = Chunk(text[start:end], start, end, len(chunks))
        chunks.append(chunk)
        i = j
        if i < len(spans):
            start = spans[i][0]
            if overlap > 0:
                start = _overlap_start(text, chunk, spans[i], overlap, budget, count)
    return chunks


def _extend(
    text: str, spans: Sequence[Span], start: int, j: int, budget: int, count: TokenCounter
) -> int:
    """Past the sum of the pieces' counts (each rounded up), the chunk may still hold
    more: the most pieces whose joined count fits, found by doubling then halving."""

    def fits(stop: int) -> bool:
        return count(text[start : spans[stop - 1][1]]) <= budget

    good, step = j, 1
    while good + step <= len(spans) and fits(good + step):
        good += step
        step *= 2
    bad = min(good + step, len(spans) + 1)  # the first count known (or taken) to be over
    while bad - good > 1:
        mid = (good + bad) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good


def check_budget(max_tokens: int, overlap_tokens: int) -> None:
    """Raise ValueError for a budget no splitter can keep."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive whole number, not {max_tokens!r}")
    if isinstance(overlap_tokens, bool) or not isinstance(overlap_tokens, int):
        raise ValueError(f"overlap_tokens must be a whole number, not {overlap_tokens!r}")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError(
            f"overlap_tokens must be at least 0 and below max_tokens ({max_tokens}), "
            f"not {overlap_tokens}"
        )


def split_text(
    text: str,
    *,
    max_tokens: int,
    overlap_tokens: int = 0,
    count_tokens: Optional[TokenCounter] = None,
) -> List[Chunk]:
    """Split ``text`` into chunks of at most ``max_tokens`` tokens each.

    Cuts at paragraph breaks, then sentence ends, then between words, then (a word
    longer than the budget) between characters. Each chunk after the first repeats up
    to ``overlap_tokens`` of the end of the one before it, in whole words. Chunks are
    exact slices of ``text`` (``chunk.text == text[chunk.start:chunk.end]``), in order,
    and together cover it; an empty text gives no chunks.

    Args:
        text: the source.
        max_tokens: the budget of one chunk, overlap included.
        overlap_tokens: how much of the previous chunk's end each chunk repeats (at most).
        count_tokens: counts a text's tokens (e.g. :func:`token_counter`); by default an
            upper estimate from its characters.

    Raises:
        ValueError: a budget below 1, an overlap not below the budget, or a budget so
            small that one character does not fit it.
    """
    check_budget(max_tokens, overlap_tokens)
    if not text:
        return []
    count = count_tokens if count_tokens is not None else estimate_counter()
    spans = pieces(text, (0, len(text)), max_tokens, count)
    return pack(text, spans, max_tokens, overlap_tokens, count)
