"""Stream continuation: a chat stream cut mid-answer is continued, never returned short.

``client.stream_chat(model, messages, continue_on_cut=True)`` returns a
:class:`ContinuedStream`. When its stream is cut (the connection dropped or was reset,
the server restarted, no data in time, or the stream ended without a finish reason), it
sends a continuation request: the same messages, then the partial answer as an
``assistant`` message, then a ``user`` message asking to continue exactly where the
answer stopped (:data:`CONTINUE_PROMPT`); the chunks of that answer follow in the same
iteration, and the joined :class:`~lmstrix.types.Completion` has ``continued`` set to
the number of continuation requests. If continuing fails too, the original
:class:`~lmstrix.errors.StreamError` is raised, carrying all the text received.

Why an instruction and not a trailing assistant message alone: the OpenAI-compatible
endpoint of LM Studio (and of most servers) applies the chat template and starts a new
assistant turn after the last message, so a trailing assistant message is not reliably
continued ("prefill" is a per-server feature). The instruction works on every chat
server; how exactly a real model joins its continuation to the partial answer is up to
the model. Standard library only.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional

from .._log import logger
from ..errors import ConfigError, LMStrixError, StreamError
from ..types import Chunk, Completion, Stats
from ._replies import Messages, messages_of
from ._stream import ChatStream

if TYPE_CHECKING:
    from ._client import Client

__all__ = [
    "CONTINUABLE_KINDS",
    "CONTINUE_PROMPT",
    "DEFAULT_CONTINUATIONS",
    "ContinuedStream",
    "continuation_messages",
    "continuing_stream",
]

log = logger(__name__)

CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it exactly where it stopped, from the "
    "next character on: do not repeat anything and add nothing before it."
)
"""The user message of a continuation request, after the partial answer."""

DEFAULT_CONTINUATIONS = 3
"""Continuation requests allowed per stream with ``continue_on_cut=True``."""

CONTINUABLE_KINDS = frozenset({"disconnected", "timeout", "truncated"})
"""The :attr:`StreamError.kind` values that are continued; an error the server sent
(``error_event``) or a bad event is raised as it is."""


def continuation_messages(
    messages: List[Mapping[str, Any]], partial: str
) -> List[Mapping[str, Any]]:
    """The messages of a continuation request: ``messages``, the partial answer, the ask.

    Without any partial answer (a cut before the first token) the request is resent as
    it was.
    """
    if not partial:
        return list(messages)
    return [
        *messages,
        {"role": "assistant", "content": partial},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]


def _limit(option: Any) -> int:
    if option is True:
        return DEFAULT_CONTINUATIONS
    if option is False or option is None:
        return 0
    if isinstance(option, int) and option >= 0:
        return option
    raise ConfigError(
        f"continue_on_cut must be True, False or a number of continuations, not {option!r}"
    )


def continuing_stream(
    client: Client, model: str, messages: Messages, params: Dict[str, Any]
) -> ChatStream:
    """``client.stream_chat`` with ``params["continue_on_cut"]`` taken out and applied.

    Raises:
        ConfigError: ``continue_on_cut`` is not a bool or a non-negative count.
    """
    rest = dict(params)
    limit = _limit(rest.pop("continue_on_cut"))
    listed = messages_of(messages)
    first = client.stream_chat(model, listed, **rest)
    if not limit:
        return first
    return ContinuedStream(client, model, listed, rest, first, limit)


class ContinuedStream(ChatStream):
    """A :class:`ChatStream` over one or more requests: the first, then continuations.

    Iterate it, call :meth:`text` or read :attr:`completion` as with any stream. The
    joined completion's ``text`` is everything received; ``usage`` and ``finish_reason``
    are those of the last request (its prompt holds the whole conversation so far);
    ``stats.time_to_first_token_s`` and ``total_time_s`` cover the whole answer.
    """

    def __init__(
        self,
        client: Client,
        model: str,
        messages: List[Mapping[str, Any]],
        params: Dict[str, Any],
        first: ChatStream,
        limit: int,
    ) -> None:
        # Not ChatStream.__init__: this reads no response itself, it reads other streams.
        self._client = client
        self._model = model
        self._messages = messages
        self._params = params
        self._current = first
        self._limit = limit
        self._url = first._url
        self._started = first._started
        self._first_token_at: Optional[float] = None
        self._scope = None
        self._texts: List[str] = []
        self._reasoning: List[str] = []
        self._continued = 0
        self._completion: Optional[Completion] = None
        self._closed = False
        self._stopped = False
        self._on_release: List[Any] = []
        self._pieces = self._run()

    def __repr__(self) -> str:
        state = "done" if self._completion else ("closed" if self._closed else "open")
        return f"<ContinuedStream model={self._model!r} {state} continued={self._continued}>"

    @property
    def continued(self) -> int:
        """Continuation requests sent so far."""
        return self._continued

    def _close_source(self) -> None:
        self._current.close()

    def _run(self) -> Iterator[Chunk]:
        original: Optional[StreamError] = None
        stream = self._current
        while True:
            try:
                yield from self._relay(stream)
                if self._stopped:
                    return
                last = stream.completion
                break
            except StreamError as exc:
                original = original or exc
                if self._continued and exc.kind == "empty" and self._texts:
                    last = Completion("", "stop")  # nothing was left to say
                    break
                if exc.kind not in CONTINUABLE_KINDS or self._continued >= self._limit:
                    error = self._failed(original, exc)
                    if error is exc:
                        raise
                    raise error from exc
                stream = self._next_stream(original)
        self._completion = self._joined(last)
        self._release()

    def _relay(self, stream: ChatStream) -> Iterator[Chunk]:
        for chunk in stream:
            if chunk.text:
                if self._first_token_at is None:
                    self._first_token_at = time.perf_counter()
                self._texts.append(chunk.text)
            if chunk.reasoning:
                self._reasoning.append(chunk.reasoning)
            yield chunk
            if self._stopped:
                return

    def _next_stream(self, original: StreamError) -> ChatStream:
        self._continued += 1
        partial = "".join(self._texts)
        log.warning(
            "stream from %s (model %r) was cut after %d characters (%s); continuing it "
            "(continuation %d of %d)",
            self._url,
            self._model,
            len(partial),
            original.kind,
            self._continued,
            self._limit,
        )
        messages = continuation_messages(self._messages, partial)
        try:
            self._current = self._client.stream_chat(self._model, messages, **self._params)
        except LMStrixError as exc:
            raise self._failed(original, exc) from exc
        return self._current

    def _failed(self, original: StreamError, latest: BaseException) -> StreamError:
        """The original error, carrying all the text received (and what went wrong next)."""
        self._release()
        text = "".join(self._texts)
        if latest is original and original.text == text:
            return original
        return StreamError(
            f"{original.message} (continued {self._continued} time(s); then: {latest})",
            url=original.url,
            text=text,
            kind=original.kind,
            body=original.body,
        )

    def _joined(self, last: Completion) -> Completion:
        end = time.perf_counter()
        first = self._first_token_at
        stats: Stats = dataclasses.replace(
            last.stats,
            time_to_first_token_s=None if first is None else first - self._started,
            total_time_s=end - self._started,
            stop_reason=last.finish_reason,
        )
        return dataclasses.replace(
            last,
            text="".join(self._texts),
            reasoning="".join(self._reasoning),
            stats=stats,
            continued=self._continued,
        )
