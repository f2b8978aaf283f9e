"""`ensemble`: one prompt to several models at once; every answer, its timing, and a vote."""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Optional, Sequence

from .._threads import map_in_threads
from ..errors import LMStrixError

if TYPE_CHECKING:
    from ..types import Completion

__all__ = ["EnsembleAnswer", "EnsembleResult", "ensemble"]

SHORT_ANSWER_CHARS = 80  # longer answers are not voted on: they rarely match word for word


@dataclass(frozen=True)
class EnsembleAnswer:
    """One model's answer: its text (or the error), the completion and the seconds taken."""

    model: str
    text: Optional[str]
    seconds: float
    completion: Optional[Completion] = None
    error: Optional[BaseException] = None

    @property
    def ok(self) -> bool:
        """True when the model answered."""
        return self.error is None


@dataclass(frozen=True)
class EnsembleResult:
    """Every model's answer, in the order asked, and the majority among short answers.

    ``vote`` is the answer most models gave (compared case- and space-insensitively,
    trailing punctuation ignored) when more than half of the answers agree on it, else
    None; ``votes`` is how many gave it.
    """

    answers: List[EnsembleAnswer]
    vote: Optional[str]
    votes: int


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().strip(".!").lower()


def ensemble(client: Any, models: Sequence[str], messages: Any, **params: Any) -> EnsembleResult:
    """Ask every model in ``models`` the same thing in parallel, on ``client`` (or a pool).

    A model that fails gives an answer with its ``error``; the others still count.

    Raises:
        ValueError: ``models`` is empty.
    """
    keys = list(models)
    if not keys:
        raise ValueError("ensemble needs at least one model")

    def ask(model: str) -> EnsembleAnswer:
        started = time.perf_counter()
        try:
            done = client.chat(model, messages, **params)
        except LMStrixError as exc:
            return EnsembleAnswer(model, None, time.perf_counter() - started, error=exc)
        return EnsembleAnswer(model, done.text, time.perf_counter() - started, done)

    answers = map_in_threads(ask, keys, name="lmstrix-ensemble")
    short = [
        _normalise(a.text)
        for a in answers
        if a.text is not None and len(a.text.strip()) <= SHORT_ANSWER_CHARS
    ]
    vote, votes = None, 0
    if short:
        best, count = Counter(short).most_common(1)[0]
        if count * 2 > len(answers):
            vote, votes = best, count
    return EnsembleResult(answers, vote, votes)
