"""`UsageLog`: billing-style records of the tokens each label used, per request.

A middleware: ``Client(label="alice", middleware=[UsageLog("usage.jsonl")])``. Each
chat, completion or embedding request that ends gives one :class:`UsageRecord` (label,
server, model, operation, tokens, seconds, status) to a callback, or appends it as one
JSON line to a file (one ``write`` per line in append mode, so processes can share the
file). Never a prompt, an answer, a header or the token.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Union
from urllib.parse import urlsplit

from .._log import logger
from ._facts import INFERENCE, Ended, facts_of, metered

if TYPE_CHECKING:
    from os import PathLike

    from ..middleware import CallNext
    from ..transport._request import Request
    from ..transport._stdlib import Response

__all__ = ["UsageLog", "UsageRecord"]

log = logger(__name__)


@dataclass(frozen=True)
class UsageRecord:
    """One request's usage. Token counts are ``None`` when the server did not report
    them (a stream closed early, an error); ``status`` is 0 when no answer came."""

    time: str
    label: Optional[str]
    server: str
    model: Optional[str]
    operation: str
    stream: bool
    prompt_tokens: Optional[int]
    completion_tokens: Optional[int]
    total_tokens: Optional[int]
    seconds: float
    status: int

    def to_dict(self) -> Dict[str, Any]:
        """The record as a JSON-ready dict (the line a :class:`UsageLog` file gets)."""
        return asdict(self)


class UsageLog:
    """A middleware giving one :class:`UsageRecord` per request to ``target``.

    ``target`` is a callable taking the record, or a path: records are appended to it
    as JSON lines. A callback that raises is logged and skipped: it never breaks a call.
    """

    def __init__(self, target: Union[Callable[[UsageRecord], Any], str, PathLike[str]]) -> None:
        self.path: Optional[str] = None
        self._callback: Optional[Callable[[UsageRecord], Any]] = None
        if callable(target):
            self._callback = target
        else:
            self.path = os.fspath(target)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"UsageLog({self.path or self._callback!r})"

    def __call__(self, request: Request, call_next: CallNext) -> Response:
        facts = facts_of(request)
        if facts.operation not in INFERENCE:
            return call_next(request)
        parts = urlsplit(request.url)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def record(ended: Ended) -> None:
            usage = ended.usage
            self.emit(
                UsageRecord(
                    time=stamp,
                    label=facts.label,
                    server=f"{parts.scheme}://{parts.netloc}",
                    model=facts.model,
                    operation=facts.operation,
                    stream=request.stream,
                    prompt_tokens=None if usage is None else usage.prompt_tokens,
                    completion_tokens=None if usage is None else usage.completion_tokens,
                    total_tokens=None if usage is None else usage.total_tokens,
                    seconds=round(ended.seconds, 6),
                    status=ended.status,
                )
            )

        return metered(request, call_next, record)

    def emit(self, record: UsageRecord) -> None:
        """Hand ``record`` to the callback, or append it to the file."""
        try:
            if self._callback is not None:
                self._callback(record)
                return
            assert self.path is not None
            line = json.dumps(record.to_dict(), sort_keys=True) + "\n"
            with self._lock, open(self.path, "a", encoding="utf-8") as file:
                file.write(line)
        except Exception:
            log.exception("usage record for %s could not be written", record.label)
