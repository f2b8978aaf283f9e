"""Helpers of the client: messages in, model rows out, and the served-model check.

Kept apart from :mod:`lmstrix.client` so that module holds the endpoints only. Answers
themselves are decoded in :mod:`lmstrix.types` (``Completion.from_wire``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Union

from .._log import logger
from ..errors import APIStatusError, ModelNotFoundError
from ..types import ModelInfo

__all__ = [
    "Messages",
    "chat_body",
    "check_served",
    "embedding_rows",
    "merge_rows",
    "messages_of",
    "same_model",
]

log = logger("lmstrix.client._client")  # where users have always seen it

Messages = Union[str, Sequence[Mapping[str, Any]]]


def chat_body(model: str, messages: Messages, params: Mapping[str, Any]) -> Dict[str, Any]:
    """The body of a chat request: ``tools=`` (definitions or functions) made wire-ready."""
    body = {"model": model, "messages": messages_of(messages), **params}
    if body.get("tools") is not None:
        from ._toolcalls import wire_tools  # only requests with tools load it

        body["tools"] = wire_tools(body["tools"], body.get("tool_choice"))
    return body


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


def check_served(server: str, asked: str, served: str, *, strict: bool) -> None:
    """Warn (or raise, when ``strict``) when the model that answered is not the one asked."""
    if same_model(asked, served):
        return
    message = (
        f"asked {server} for model {asked!r} but {served!r} answered; "
        "the server may serve whatever is loaded when a name is unknown"
    )
    if strict:
        raise ModelNotFoundError(message, url=server, status_code=200, model=asked)
    log.warning("%s", message)


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


def embedding_rows(answer: Mapping[str, Any], url: str, model: str) -> List[List[float]]:
    """The vectors of an ``/v1/embeddings`` answer, in input order."""
    rows = answer.get("data")
    if not isinstance(rows, list):
        raise APIStatusError(
            f"{url} answered without embeddings", url=url, status_code=200, body=answer, model=model
        )
    rows = sorted(rows, key=lambda r: r.get("index", 0) if isinstance(r, dict) else 0)
    return [[float(x) for x in r.get("embedding", [])] for r in rows if isinstance(r, dict)]
