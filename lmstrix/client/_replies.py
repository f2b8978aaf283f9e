"""Helpers of the client that turn requests and replies into lmstrix objects.

Kept apart from :mod:`lmstrix.client` so that module holds the endpoints and the
request policy only.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Union

from ..types import ModelInfo, Stats, Usage

__all__ = ["Messages", "merge_rows", "messages_of", "same_model", "stats_of"]

Messages = Union[str, Sequence[Mapping[str, Any]]]


def messages_of(messages: Messages) -> List[Mapping[str, Any]]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    result = list(messages)
    for i, msg in enumerate(result):
        if not isinstance(msg, Mapping) or "role" not in msg:
            raise TypeError(f"messages[{i}] must be a mapping with 'role' and 'content'")
    return result


def same_model(asked: str, served: str) -> bool:
    if served == asked or served.startswith(asked + ":"):
        return True
    # LM Studio may answer with the key without the "@quant" variant, or a file path.
    base = asked.split("@", 1)[0]
    return served == base or served.endswith("/" + asked) or asked.endswith("/" + served)


def stats_of(raw: Any, elapsed: float, usage: Usage) -> Stats:
    if isinstance(raw, dict) and raw:
        stats = Stats.from_dict(raw)
        if stats.total_time_s is None:
            return Stats(
                stats.time_to_first_token_s,
                stats.tokens_per_second,
                stats.generation_time_s,
                elapsed,
                stats.stop_reason,
                "server",
            )
        return stats
    rate = usage.completion_tokens / elapsed if usage.completion_tokens and elapsed > 0 else None
    return Stats(total_time_s=elapsed, tokens_per_second=rate, source="client")


def merge_rows(rows: List[Mapping[str, Any]]) -> List[ModelInfo]:
    """Model rows to :class:`ModelInfo`, one per key (v0 may list a key twice)."""
    merged: Dict[str, ModelInfo] = {}
    for row in rows:
        info = ModelInfo.from_dict(row)
        if not info.key:
            continue
        old = merged.get(info.key)
        if old is None or (info.is_loaded and not old.is_loaded):
            merged[info.key] = info
    return list(merged.values())
