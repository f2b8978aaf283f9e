"""The pre-flight fit check: does a prompt fit a model's tested working context?

No tokenizer reaches us over HTTP, so the prompt is estimated from its characters with
the characters per token the context search calibrated for that model (the registry
keeps it), less a safety margin, plus a few tokens per message for the chat template.
The estimate errs high: skipping a model that would just have fitted costs a fallback;
sending one a prompt it cannot hold costs an overflow, or a wrong answer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

if TYPE_CHECKING:
    from ._records import ModelRecord

__all__ = [
    "DEFAULT_ANSWER_TOKENS",
    "DEFAULT_CHARS_PER_TOKEN",
    "estimate_tokens",
    "fit_problem",
]

DEFAULT_CHARS_PER_TOKEN = 3.0
"""Used when no calibration is known: lower than most tokenizers give for prose, so
the estimate is high."""
DEFAULT_ANSWER_TOKENS = 256
"""Room kept for the answer when a call gives no ``max_tokens``."""
SAFETY = 1.1  # real tokenizers vary a few percent between texts of one length
TOKENS_PER_MESSAGE = 8  # role markers and separators of a chat template


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def estimate_tokens(
    messages: Union[str, Sequence[Mapping[str, Any]]], chars_per_token: Optional[float] = None
) -> int:
    """An upper estimate of the prompt tokens of ``messages`` (text or chat messages)."""
    cpt = chars_per_token if chars_per_token and chars_per_token > 0 else DEFAULT_CHARS_PER_TOKEN
    if isinstance(messages, str):
        chars, count = len(messages), 1
    else:
        chars = sum(len(_text_of(m.get("content"))) for m in messages)
        count = len(messages)
    return math.ceil(chars / cpt * SAFETY) + TOKENS_PER_MESSAGE * count


def fit_problem(
    record: Optional[ModelRecord],
    messages: Union[str, Sequence[Mapping[str, Any]]],
    max_tokens: Optional[int],
) -> Optional[str]:
    """Why ``messages`` plus the answer do not fit the record's working context (or None).

    A model with no tested working context is given the benefit of the doubt.
    """
    if record is None or not record.working_context:
        return None
    prompt = estimate_tokens(messages, record.chars_per_token)
    answer = DEFAULT_ANSWER_TOKENS if max_tokens is None else max(0, int(max_tokens))
    if prompt + answer <= record.working_context:
        return None
    return (
        f"about {prompt:,} prompt tokens + {answer:,} for the answer exceed its tested "
        f"working context of {record.working_context:,}"
    )
