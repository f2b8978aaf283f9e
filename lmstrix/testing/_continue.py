"""The simulator's answer to a continuation request: the rest of the answer that was cut.

A continuation request (:func:`lmstrix.client._continue.continuation_messages`) ends
with the partial answer as an ``assistant`` message and the continuation ask as the last
``user`` message. The simulated model answers the user message before the partial
answer, deterministically as always, and sends only what follows the partial answer, so
the partial answer joined with the continuation is the answer an uncut stream gives.
"""

from __future__ import annotations

import re
from typing import Any, List, Optional, Sequence, Tuple

from ..client._continue import CONTINUE_PROMPT

__all__ = ["answer_pieces", "continued_from"]

_PIECE = re.compile(r"\s*\S+")


def continued_from(messages: Any) -> Optional[Tuple[str, str]]:
    """``(question, partial answer)`` of a continuation request; ``None`` for any other."""
    if not isinstance(messages, list) or len(messages) < 3:
        return None
    ask, partial = messages[-1], messages[-2]
    if not (isinstance(ask, dict) and ask.get("role") == "user"):
        return None
    if ask.get("content") != CONTINUE_PROMPT:
        return None
    if not (isinstance(partial, dict) and partial.get("role") == "assistant"):
        return None
    for message in reversed(messages[:-2]):
        if isinstance(message, dict) and message.get("role") == "user":
            question = message.get("content")
            text = partial.get("content")
            if isinstance(question, str) and isinstance(text, str):
                return question, text
            return None
    return None


def answer_pieces(words: Sequence[str], partial: str = "") -> List[str]:
    """The answer ``words`` as streamed pieces (a space before each but the first).

    After ``partial`` (a prefix of the answer, as a cut stream leaves it) only the rest
    is given, each piece with the space that precedes it; an answer that does not start
    with ``partial`` is given whole.
    """
    text = " ".join(words)
    if partial and text.startswith(partial):
        text = text[len(partial) :]
    return _PIECE.findall(text)
