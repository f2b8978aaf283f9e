"""A deterministic "summarizer" for simulated models: echo the marked words of a prompt.

A :class:`~lmstrix.testing.SimModel` with ``echo_pattern`` (a regular expression)
answers a prompt that is neither a probe nor arithmetic with the distinct matches of the
pattern, in the order they first appear, separated by spaces: a summary that keeps every
marker it was shown and nothing else, so a test can see which parts of a document reached
an answer. When the prompt has a line starting with ``Question:``, only the matches that
share a word (letters and digits, 3 or more, any case) with that line are kept, so a
marker ``[[AMBER-4711]]`` answers "What code goes with amber?" and no other question.
Nothing matched: the answer is ``NOTHING``.
"""

from __future__ import annotations

import functools
import re
from typing import Pattern, Set, Tuple

__all__ = ["NOTHING", "echo_answer"]

NOTHING = "NOTHING"
"""The answer when no marker is kept."""
_QUESTION = re.compile(r"^Question:(.*)$", re.MULTILINE)
_WORD = re.compile(r"[^\W_]{3,}")


@functools.lru_cache(maxsize=32)
def _compiled(pattern: str) -> Pattern[str]:
    return re.compile(pattern)


def _words(text: str) -> Set[str]:
    return {w.casefold() for w in _WORD.findall(text)}


def echo_answer(pattern: str, text: str) -> Tuple[str, ...]:
    """The words answered to ``text``: the distinct matches of ``pattern`` (see above)."""
    question = _QUESTION.search(text)
    asked = _words(question.group(1)) if question else None
    seen: Set[str] = set()
    kept = []
    for match in _compiled(pattern).finditer(text):
        found = match.group(0)
        if found in seen:
            continue
        seen.add(found)
        if asked is None or _words(found) & asked:
            kept.append(found)
    return tuple(kept) if kept else (NOTHING,)
