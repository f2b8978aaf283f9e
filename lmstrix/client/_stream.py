"""`ChatStream`: a streamed answer, read chunk by chunk as the server sends it.

The request is already sent when a stream is made (connection and status errors
surface at the call). Iterating yields :class:`~lmstrix.types.Chunk` objects; an
error inside the stream raises :class:`~lmstrix.errors.StreamError` carrying the
text received so far; so does a stream that ends early. Leaving a ``with`` block or
breaking out of the loop and calling :meth:`ChatStream.close` releases the
connection. A stream read to its ``[DONE]`` leaves its connection in the pool for the
next request (the end of the HTTP body is read too).

A server that answers a stream request with one JSON answer instead of events is
read as a stream of one chunk holding the whole answer.
"""

from __future__ import annotations

import json
import time
from json.scanner import make_scanner
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    cast,
)

from .._closing import ClosedByWith
from ..errors import APIConnectionError, APITimeoutError, LMStrixError, StreamError
from ..types import Chunk, Completion, Stats, Usage
from ._errormap import checked_json, error_for, error_message
from ._toolcalls import ToolCallJoiner
from .sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from ..transport._stdlib import Response
    from ._calls import CallScope

__all__ = ["ChatStream", "whole_answer"]


class ClosingStream(ClosedByWith):
    """What a stream of one answer does when it is let go: ``with`` closes it, and
    :meth:`close` stops reading, releases the connection and, when the answer had not
    ended, reports the call to its observers as closed. Subclasses keep ``_stopped``,
    ``_scope`` and ``_release()``, and say in :meth:`_answered` whether the answer ended."""

    _stopped: bool
    _scope: Optional[CallScope]

    def _release(self) -> None:
        raise NotImplementedError

    def _answered(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        """Stop reading and release the connection; safe to call more than once."""
        self._stopped = True
        self._release()
        if self._scope is not None and not self._answered():
            self._scope.finish(closed=True)


class ChatStream(ClosingStream, Iterator[Chunk]):
    """An iterator of :class:`~lmstrix.types.Chunk`; also a context manager.

    After the last chunk, :attr:`completion` holds the whole answer with usage (when
    the server sent it) and timing stats measured on this side.
    """

    # Applied to the whole answer at the end (structured output: parse and validate).
    _finish: Optional[Callable[[Completion], Completion]] = None

    def __init__(
        self,
        response: Response,
        *,
        url: str,
        model: str,
        started: float,
        kind: str = "chat",
        on_model: Optional[Callable[[str], None]] = None,
        whole: Optional[Completion] = None,
        scope: Optional[CallScope] = None,
    ) -> None:
        self._response = response
        self._whole = whole  # the server answered with one JSON body, not a stream
        self._scope = scope
        self._url = url
        self._model = model
        self._kind = kind
        self._on_model = on_model
        self._started = started
        self._first_token_at: Optional[float] = None
        self._decoder = SSEDecoder()
        self._pieces = self._chunks()
        self._texts: List[str] = []
        self._reasoning: List[str] = []
        self._tool_calls = ToolCallJoiner()
        self._finish_reason: Optional[str] = None
        self._usage: Optional[Usage] = None
        self._server_model: Optional[str] = None
        self._content_chunks = 0
        self._chat = kind == "chat"
        self._completion: Optional[Completion] = None
        self._closed = False
        self._stopped = False
        self._on_release: List[Callable[[], None]] = []

    def __repr__(self) -> str:
        state = "done" if self._completion else ("closed" if self._closed else "open")
        return f"<ChatStream model={self._model!r} {state}>"

    def __iter__(self) -> Iterator[Chunk]:
        # A for loop runs the chunk generator itself: no __next__ call per chunk.
        return iter(()) if self._stopped else self._pieces

    def __next__(self) -> Chunk:
        if self._stopped:
            raise StopIteration
        return next(self._pieces)

    def _answered(self) -> bool:
        return self._completion is not None

    def on_release(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the stream lets go of its connection: at its end, on an
        error, or at :meth:`close` (at once if that has happened). A pool frees its slot so."""
        if self._closed:
            callback()
        else:
            self._on_release.append(callback)

    def _release(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._close_source()
            finally:
                for callback in self._on_release:
                    callback()
                self._on_release.clear()

    def _close_source(self) -> None:
        self._response.close()

    def text(self) -> str:
        """Read the rest of the stream and return the whole answer text.

        Raises:
            StreamError: the stream failed or ended early (``.text`` has the partial answer).
            LMStrixError: the stream was closed before its end.
        """
        for _ in self:
            pass
        if self._completion is None:
            raise LMStrixError(f"the stream from {self._url} was closed before its end")
        return "".join(self._texts)

    @property
    def completion(self) -> Completion:
        """The whole answer; reads the rest of the stream first if needed."""
        self.text()
        assert self._completion is not None
        return self._completion

    def _fail(self, message: str, kind: str, body: Any = None) -> StreamError:
        self._release()
        text = "".join(self._texts)
        got = f"after {len(text)} characters of answer" if text else "before any answer"
        return StreamError(
            f"stream from {self._url} (model {self._model!r}) failed {got}: {message}",
            url=self._url,
            text=text,
            kind=kind,
            body=body,
        )

    def _chunks(self) -> Iterator[Chunk]:
        try:
            if self._whole is not None:
                yield from self._from_whole(self._whole)
            else:
                yield from self._read()
            if not self._stopped:
                done = self._whole or self._build()
                self._completion = done if self._finish is None else self._finish(done)
            self._release()
        except Exception as exc:
            if self._scope is not None:
                self._scope.finish(error=exc)
            raise
        if self._scope is not None and self._completion is not None:
            self._scope.finish(self._completion)

    def _read(self) -> Iterator[Chunk]:
        done = False
        pieces = self._response.iter_bytes()
        feed, handle = self._decoder.feed, self._handle
        try:
            for raw in pieces:
                if len(raw) > _FEED_BYTES and self._first_token_at is None:
                    # A large first read (a fast server, a buffering proxy) is decoded a
                    # slice at a time, so the first chunk goes out before the rest is parsed.
                    events: Iterable[ServerSentEvent] = _sliced(feed, raw)
                else:
                    events = feed(raw)
                for event in events:
                    data = event.data
                    if data[:1] != "{" and data.strip() == "[DONE]":
                        done = True
                        break
                    chunk = handle(event)
                    if chunk is not None:
                        if self._stopped:  # closed inside the caller's loop
                            return
                        yield chunk
                if done:
                    _drain(pieces)
                    break
            else:
                for event in self._decoder.flush():
                    if event.data.strip() == "[DONE]":
                        done = True
                        break
                    chunk = handle(event)
                    if chunk is not None:
                        yield chunk
        except APITimeoutError as exc:
            raise self._fail(f"no data in time ({exc.message})", "timeout") from exc
        except APIConnectionError as exc:
            raise self._fail(f"the connection broke ({exc.message})", "disconnected") from exc
        finally:
            self._release()
        if self._stopped:
            return
        self._check_end(done)

    def _from_whole(self, whole: Completion) -> Iterator[Chunk]:
        if whole.model is not None:
            self._server_model = whole.model
            if self._on_model is not None:
                self._on_model(whole.model)
        self._finish_reason = whole.finish_reason
        if whole.text or whole.reasoning or whole.finish_reason or whole.tool_calls:
            self._texts.append(whole.text)
            self._reasoning.append(whole.reasoning)
            self._tool_calls.add(whole.tool_calls)
            yield Chunk(
                whole.text, whole.finish_reason, whole.reasoning, whole.raw, whole.tool_calls
            )
        if not self._stopped:
            self._check_end(True)

    def _check_end(self, done: bool) -> None:
        if not (self._texts_any() or self._tool_calls) and self._finish_reason != "tool_calls":
            raise self._fail(
                "the stream carried no answer at all; servers answer this way to a prompt "
                "that does not fit the loaded context, or to a request they cancelled",
                "empty",
            )
        if self._finish_reason is None:
            # Some servers end a stream they cut short with a clean [DONE]: only a
            # finish reason says the answer is complete.
            how = "[DONE] but no finish reason" if done else "neither [DONE] nor a finish reason"
            raise self._fail(f"the stream ended with {how} (cut short)", "truncated")

    def _texts_any(self) -> bool:
        return any(self._texts) or any(self._reasoning)

    def _handle(self, event: ServerSentEvent) -> Optional[Chunk]:
        try:
            payload = _loads(event.data)
        except ValueError as exc:
            raise self._fail(f"bad event data {event.data[:80]!r}", "bad_event") from exc
        if event.event is not None or not isinstance(payload, dict) or "error" in payload:
            return self._unusual(event, payload)
        return self._take(payload)

    def _unusual(self, event: ServerSentEvent, payload: Any) -> Optional[Chunk]:
        """An event that is not a plain chunk: an error, another event type, not an object."""
        message = error_message(payload)
        if message is not None or event.event == "error":
            err = error_for(200, payload, url=self._url, model=self._model)
            text = err.message if err is not None else str(payload)[:300]
            raise self._fail(f"the server sent an error: {text}", "error_event", payload)
        if not isinstance(payload, dict):
            return None
        return self._take(payload)

    def _take(self, payload: Dict[str, Any]) -> Optional[Chunk]:
        if self._server_model is None and isinstance(payload.get("model"), str):
            self._server_model = payload["model"]
            if self._on_model is not None:
                self._on_model(self._server_model)
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._usage = Usage.from_dict(usage)
        chunk = Chunk.from_wire(payload, chat=self._chat)
        if chunk.finish_reason:
            self._finish_reason = chunk.finish_reason
        elif not (chunk.text or chunk.reasoning or chunk.tool_calls):
            return None
        if chunk.tool_calls:
            if self._first_token_at is None:
                self._first_token_at = time.perf_counter()
            self._tool_calls.add(chunk.tool_calls)
        if chunk.text:
            if self._first_token_at is None:
                self._first_token_at = time.perf_counter()
            self._texts.append(chunk.text)
            self._content_chunks += 1
        if chunk.reasoning:
            self._reasoning.append(chunk.reasoning)
        return chunk

    def _build(self) -> Completion:
        end = time.perf_counter()
        first = self._first_token_at
        usage = self._usage or Usage()
        tokens = usage.completion_tokens or self._content_chunks
        rate = None
        if first is not None and end > first and tokens > 1:
            rate = (tokens - 1) / (end - first)
        stats = Stats(
            time_to_first_token_s=None if first is None else first - self._started,
            tokens_per_second=rate,
            generation_time_s=None if first is None else end - first,
            total_time_s=end - self._started,
            stop_reason=self._finish_reason,
            source="client",
        )
        return Completion(
            text="".join(self._texts),
            finish_reason=self._finish_reason,
            model=self._server_model,
            usage=usage,
            stats=stats,
            reasoning="".join(self._reasoning),
            raw={},
            tool_calls=self._tool_calls.calls(),
        )


_DRAIN_PIECES = 8
_FEED_BYTES = 512
_scan: Callable[[str, int], Tuple[Any, int]] = make_scanner(cast(Any, json.JSONDecoder()))


def _loads(text: str) -> Any:
    """``json.loads`` for event data, minus its wrapper's work on the common case (one
    JSON value filling the text); anything else goes to ``json.loads`` itself."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)  # raises the ValueError that says what is wrong
    return value if end == len(text) else json.loads(text)


def _sliced(
    feed: Callable[[bytes], List[ServerSentEvent]], raw: bytes
) -> Iterator[ServerSentEvent]:
    for start in range(0, len(raw), _FEED_BYTES):
        yield from feed(raw[start : start + _FEED_BYTES])


def _drain(pieces: Iterator[bytes]) -> None:
    """Read what follows ``[DONE]`` (the end of the HTTP body) so the connection can be
    reused; give up quietly after a few pieces, or on an error (it is then dropped)."""
    try:
        for _ in zip(range(_DRAIN_PIECES), pieces):
            pass
    except APIConnectionError:
        pass


def whole_answer(
    response: Response, *, url: str, model: str, chat: bool, started: float
) -> Optional[Completion]:
    """``None`` for a real stream; else the one JSON body a server answered a stream
    request with, read and closed: raised when it is an error, else a :class:`Completion`.

    Raises:
        APIStatusError: the server answered with an error.
        StreamError: the server did not stream and its answer is no completion.
    """
    if response.status_code < 300 and "json" not in response.headers.get("content-type", ""):
        return None
    try:
        raw = response.read()
    finally:
        response.close()
    parsed = checked_json(response.status_code, raw, url=url, model=model)
    if not isinstance(parsed, dict):
        raise StreamError(
            f"{url} (model {model!r}) did not stream: it answered with {str(parsed)[:200]!r}",
            url=url,
            kind="bad_event",
            body=parsed,
        )
    return Completion.from_wire(parsed, chat=chat, elapsed_s=time.perf_counter() - started)
