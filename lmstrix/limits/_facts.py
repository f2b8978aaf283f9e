"""What the governance middleware reads from a request and learns from its response.

:func:`facts_of` gives a request's label, operation, model and a token estimate made
before anything is sent; :func:`metered` sends it on and reports, once, how it ended
(status, the usage the server reported, seconds), for a stream when its body ends.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Mapping, Optional

from ..errors import APIConnectionError
from ..transport._request import LABEL, OPERATION
from ..transport._stdlib import BufferedResponse
from ..types import Usage

if TYPE_CHECKING:
    from ..middleware import CallNext
    from ..transport._request import Request
    from ..transport._stdlib import Response

__all__ = ["INFERENCE", "Ended", "Facts", "estimate_tokens", "facts_of", "metered"]

INFERENCE = frozenset(("chat", "completion", "embedding", "respond"))
"""The operations that use a model's tokens (loads, unloads and listings do not);
``respond`` is LM Studio 0.4's native chat."""

_TAIL_BYTES = 64 * 1024  # a stream's usage is in its last events


@dataclass(frozen=True)
class Facts:
    """A request as governance sees it: who, what, which model, how many tokens at most."""

    label: Optional[str]
    operation: str
    model: Optional[str]
    estimate: int
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Ended:
    """How a request ended: ``status`` 0 when no answer came (``sent``: it may have
    reached the server), the ``usage`` the server reported (``None`` when it did not, or
    a stream was closed before its end), and the seconds from sending to the end."""

    status: int
    usage: Optional[Usage]
    seconds: float
    sent: bool = True

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def estimate_tokens(body: Mapping[str, Any], operation: str, completion_tokens: int = 512) -> int:
    """An upper-end guess of the tokens a request will use, made before it is sent.

    The prompt counts one token per three bytes of text plus eight per message or
    input, and a chat request 32 more (its chat template, a default system prompt);
    the answer counts ``max_tokens`` when given, else ``completion_tokens``
    (embeddings produce none). Pass ``max_tokens`` for a figure close to the real one:
    a real tokenizer may still count more than this guess for unusual text.
    """
    texts: List[str] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, Mapping) else None
            texts.append(content if isinstance(content, str) else json.dumps(content))
    for name in ("prompt", "input", "system_prompt"):
        value = body.get(name)
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            texts.extend(v if isinstance(v, str) else json.dumps(v) for v in value)
    prompt = sum(math.ceil(len(t.encode("utf-8")) / 3) + 8 for t in texts)
    if operation in ("chat", "respond"):
        prompt += 32
    if operation == "embedding":
        return prompt
    limit = body.get("max_output_tokens" if operation == "respond" else "max_tokens")
    answer = limit if isinstance(limit, int) and limit > 0 else completion_tokens
    return prompt + answer


def facts_of(request: Request, completion_tokens: int = 512) -> Facts:
    """The :class:`Facts` of ``request`` (a body that is no JSON object counts as empty)."""
    operation = str(request.extensions.get(OPERATION, ""))
    body: Any = {}
    if request.body:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = {}
    if not isinstance(body, dict):
        body = {}
    model = body.get("model", body.get("instance_id"))
    estimate = estimate_tokens(body, operation, completion_tokens) if operation in INFERENCE else 0
    label = request.extensions.get(LABEL)
    return Facts(
        None if label is None else str(label),
        operation,
        None if model is None else str(model),
        estimate,
        body,
    )


def usage_of_json(body: bytes) -> Optional[Usage]:
    """The usage of a JSON answer (``usage``, or LM Studio's ``stats``), if it has one."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return _usage_in(parsed)


def usage_of_sse(tail: bytes) -> Optional[Usage]:
    """The usage in the last event that carries one (``tail``: the end of a stream; a
    native chat's is in the ``stats`` of its ``chat.end`` result)."""
    for line in reversed(tail.splitlines()):
        if line.startswith(b"data:") and (b'"usage"' in line or b'"stats"' in line):
            found = usage_of_json(line[5:].strip())
            if found is not None:
                return found
    return None


def _usage_in(parsed: Any) -> Optional[Usage]:
    if not isinstance(parsed, dict):
        return None
    if isinstance(parsed.get("result"), dict):  # a native chat's chat.end event
        parsed = parsed["result"]
    for key in ("usage", "stats"):
        value = parsed.get(key)
        if isinstance(value, dict):
            usage = Usage.from_dict(value)
            if usage.total_tokens is not None:
                return usage
    return None


def metered(request: Request, call_next: CallNext, done: Callable[[Ended], None]) -> Response:
    """Send ``request`` on; call ``done`` once with how it :class:`Ended`.

    A plain answer is read here (and handed on in memory); a stream is passed through
    as it arrives and reported when its body ends or it is closed.
    """
    started = time.perf_counter()
    try:
        response = call_next(request)
    except APIConnectionError as exc:
        done(Ended(0, None, time.perf_counter() - started, sent=exc.sent))
        raise
    except Exception:  # a middleware further in refused: nothing was sent
        done(Ended(0, None, time.perf_counter() - started, sent=False))
        raise
    if request.stream and "event-stream" in response.headers.get("content-type", ""):
        return _MeteredStream(response, started, done)
    try:
        body = response.read()
    except APIConnectionError as exc:
        done(Ended(0, None, time.perf_counter() - started, sent=exc.sent))
        raise
    finally:
        response.close()
    status = response.status_code
    usage = usage_of_json(body) if 200 <= status < 300 else None
    done(Ended(status, usage, time.perf_counter() - started))
    return BufferedResponse(status, response.headers, body)


class _MeteredStream:
    """A streamed response passed through, reporting its usage when its body ends."""

    def __init__(self, inner: Response, started: float, done: Callable[[Ended], None]) -> None:
        self._inner = inner
        self._started = started
        self._done: Optional[Callable[[Ended], None]] = done
        self._tail = b""
        self.status_code = inner.status_code
        self.headers = inner.headers

    def read(self) -> bytes:
        return b"".join(self.iter_bytes())

    def iter_bytes(self) -> Iterator[bytes]:
        try:
            for piece in self._inner.iter_bytes():
                self._tail = (self._tail + piece)[-_TAIL_BYTES:]
                yield piece
        except APIConnectionError:
            self._end(None)
            raise
        self._end(usage_of_sse(self._tail))

    def close(self) -> None:
        self._end(None)
        self._inner.close()

    def _end(self, usage: Optional[Usage]) -> None:
        done, self._done = self._done, None
        if done is not None:
            done(Ended(self.status_code, usage, time.perf_counter() - self._started))
