"""The pre-flight fit check: does a prompt fit a model's tested working context?

No tokenizer reaches us over HTTP, so the prompt is estimated from its characters with
the characters per token the context search calibrated for that model (the registry
keeps it), less a safety margin, plus a few tokens per message for the chat template.
The estimate errs high: skipping a model that would just have fitted costs a fallback;
sending one a prompt it cannot hold costs an overflow, or a wrong answer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple, Union

if TYPE_CHECKING:
    from ._records import ModelRecord

__all__ = [
    "DEFAULT_ANSWER_TOKENS",
    "DEFAULT_CHARS_PER_TOKEN",
    "answer_tokens",
    "estimate_tokens",
    "fit_problem",
    "prompt_size",
    "refined_chars_per_token",
]

DEFAULT_CHARS_PER_TOKEN = 3.0
"""Used when no calibration is known: lower than most tokenizers give for prose, so
the estimate is high."""
DEFAULT_ANSWER_TOKENS = 256
"""Room kept for the answer when a call gives no ``max_tokens``."""
SAFETY = 1.1  # real tokenizers vary a few percent between texts of one length
TOKENS_PER_MESSAGE = 8  # role markers and separators of a chat template
MIN_CALIBRATION_CHARS = 200
"""A shorter prompt says more about the template than about the tokenizer: not learnt from."""
EASE = 0.25
"""How far one count that the estimate overshot moves the calibration towards it."""

Prompt = Union[str, Sequence[Mapping[str, Any]]]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def prompt_size(messages: Prompt) -> Tuple[int, int]:
    """``(characters, messages)`` of a prompt (text or chat messages)."""
    if isinstance(messages, str):
        return len(messages), 1
    return sum(len(_text_of(m.get("content"))) for m in messages), len(messages)


def estimate_tokens(messages: Prompt, chars_per_token: Optional[float] = None) -> int:
    """An upper estimate of the prompt tokens of ``messages`` (text or chat messages)."""
    cpt = chars_per_token if chars_per_token and chars_per_token > 0 else DEFAULT_CHARS_PER_TOKEN
    chars, count = prompt_size(messages)
    return math.ceil(round(chars / cpt * SAFETY, 9)) + TOKENS_PER_MESSAGE * count


def answer_tokens(max_tokens: Optional[int]) -> int:
    """The room kept for the answer: ``max_tokens``, or a default when not given."""
    return DEFAULT_ANSWER_TOKENS if max_tokens is None else max(0, int(max_tokens))


def refined_chars_per_token(
    old: Optional[float], chars: int, messages: int, prompt_tokens: int
) -> Optional[float]:
    """The calibration after the server counted ``prompt_tokens`` for a prompt of
    ``chars`` characters in ``messages`` messages (None: nothing to learn from it).

    A count above what the calibration expects is believed at once (an estimate that is
    low risks an overflow); one below moves it only part of the way (:data:`EASE`).
    """
    text_tokens = prompt_tokens - TOKENS_PER_MESSAGE * messages
    if chars < MIN_CALIBRATION_CHARS or text_tokens <= 0:
        return None
    seen = chars / text_tokens
    if old is None or old <= 0 or seen < old:
        return round(seen, 4)
    return round(old + (seen - old) * EASE, 4)


def fit_problem(
    record: Optional[ModelRecord], messages: Prompt, max_tokens: Optional[int]
) -> Optional[str]:
    """Why ``messages`` plus the answer do not fit the record's working context (or None).

    A model with no tested working context is given the benefit of the doubt.
    """
    if record is None or not record.working_context:
        return None
    prompt = estimate_tokens(messages, record.chars_per_token)
    answer = answer_tokens(max_tokens)
    if prompt + answer <= record.working_context:
        return None
    return (
        f"about {prompt:,} prompt tokens + {answer:,} for the answer exceed its tested "
        f"working context of {record.working_context:,}"
    )
