"""`NativeChatStream`: LM Studio's native chat (``/api/v1/chat``) as its named events.

The server sends ``event: <type>`` then ``data: <json>`` for each event, from
``chat.start`` to ``chat.end`` (whose ``result`` is the whole answer); there is no
``[DONE]``. Iterating yields :class:`~lmstrix.client._native_types.NativeEvent`
objects in order. A stream that ends without ``chat.end`` raises
:class:`~lmstrix.errors.StreamError` (``kind="truncated"``) with the text so far.

An ``error`` event is yielded like the others and remembered: LM Studio still sends
``chat.end`` after it with whatever was generated, and lmstrix reads it (so the
connection stays usable), then raises :class:`~lmstrix.errors.StreamError`
(``kind="error_event"``) with the text so far; its ``body`` holds the error event's
data plus the partial ``result``. An answer that failed is never handed over as a
result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional

from .._log import logger
from ..errors import APIConnectionError, APITimeoutError, LMStrixError, StreamError
from ._native_types import NativeChatResult, NativeEvent
from ._stream import ClosingStream, _drain, _loads
from .sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from ..transport._stdlib import Response
    from ._calls import CallScope

__all__ = ["NativeChatStream", "ProgressCallback"]

log = logger(__name__)

ProgressCallback = Callable[[str, float], None]
"""``on_progress(kind, fraction)``: ``kind`` is ``"model_load"`` or ``"prompt_processing"``."""

_PROGRESS = {
    "model_load.progress": "model_load",
    "prompt_processing.progress": "prompt_processing",
}


class NativeChatStream(ClosingStream, Iterator[NativeEvent]):
    """An iterator of :class:`NativeEvent`; also a context manager.

    The request is sent before this object exists (connection and status errors are
    raised by :meth:`~lmstrix.Client.stream_respond` itself). After ``chat.end``,
    :attr:`result` holds the whole answer.
    """

    def __init__(
        self,
        response: Optional[Response],
        *,
        url: str,
        model: str,
        on_progress: Optional[ProgressCallback] = None,
        scope: Optional[CallScope] = None,
        whole: Optional[Dict[str, Any]] = None,
    ) -> None:
        self._response = response
        self._url = url
        self._model = model
        self._on_progress = on_progress
        self._scope = scope
        self._whole = whole  # the server answered with one JSON body, not a stream
        self._texts: List[str] = []
        self._error: Optional[NativeEvent] = None
        self._result: Optional[NativeChatResult] = None
        self._closed = False
        self._stopped = False
        self._events = self._run()

    def __repr__(self) -> str:
        state = "done" if self._result else ("closed" if self._closed else "open")
        return f"<NativeChatStream model={self._model!r} {state}>"

    def __iter__(self) -> Iterator[NativeEvent]:
        return self

    def __next__(self) -> NativeEvent:
        if self._stopped:
            raise StopIteration
        return next(self._events)

    def _answered(self) -> bool:
        return self._result is not None

    def _release(self) -> None:
        if not self._closed:
            self._closed = True
            if self._response is not None:
                self._response.close()

    def text(self) -> str:
        """Read the rest of the stream; the answer text (the message items, joined).

        Raises:
            StreamError: the stream failed or ended early (``.text`` has the partial answer).
            LMStrixError: the stream was closed before its end.
        """
        return self.result.text

    @property
    def result(self) -> NativeChatResult:
        """The whole answer (``chat.end``'s result); reads the rest of the stream first."""
        for _ in self:
            pass
        if self._result is None:
            raise LMStrixError(f"the stream from {self._url} was closed before its end")
        return self._result

    def _fail(self, message: str, kind: str, body: Any = None) -> StreamError:
        self._release()
        text = "".join(self._texts)
        got = f"after {len(text)} characters of answer" if text else "before any answer"
        return StreamError(
            f"native chat stream from {self._url} (model {self._model!r}) failed {got}: {message}",
            url=self._url,
            text=text,
            kind=kind,
            body=body,
        )

    def _run(self) -> Iterator[NativeEvent]:
        try:
            if self._whole is not None:
                yield NativeEvent("chat.end", {"type": "chat.end", "result": self._whole})
                self._end(self._whole)
            else:
                yield from self._read()
        except Exception as exc:
            if self._scope is not None:
                self._scope.finish(error=exc)
            raise
        finally:
            self._release()
        if self._scope is not None and self._result is not None:
            self._scope.finish(self._result.to_completion())

    def _read(self) -> Iterator[NativeEvent]:
        assert self._response is not None
        decoder = SSEDecoder()
        pieces = self._response.iter_bytes()
        try:
            for raw in pieces:
                for sse in decoder.feed(raw):
                    event = self._event(sse)
                    if self._stopped:
                        return
                    yield event
                    if event.type == "chat.end":
                        _drain(pieces)
                        self._end(event.data.get("result"))
                        return
            for sse in decoder.flush():
                event = self._event(sse)
                yield event
                if event.type == "chat.end":
                    self._end(event.data.get("result"))
                    return
        except APITimeoutError as exc:
            raise self._fail(f"no data in time ({exc.message})", "timeout") from exc
        except APIConnectionError as exc:
            raise self._fail(f"the connection broke ({exc.message})", "disconnected") from exc
        if self._stopped:
            return
        if self._error is not None:
            raise self._fail(f"the server sent an error: {self._error_text()}", "error_event")
        raise self._fail("the stream ended without chat.end (cut short)", "truncated")

    def _error_text(self) -> str:
        assert self._error is not None
        error = self._error.error or {}
        return str(error.get("message") or str(dict(self._error.data))[:300])

    def _event(self, sse: ServerSentEvent) -> NativeEvent:
        try:
            data = _loads(sse.data)
        except ValueError as exc:
            raise self._fail(f"bad event data {sse.data[:80]!r}", "bad_event") from exc
        if not isinstance(data, dict):
            raise self._fail(f"event data is not an object: {sse.data[:80]!r}", "bad_event")
        kind = sse.event or data.get("type")
        if not isinstance(kind, str):
            kind = "error" if "error" in data else "unknown"
        event = NativeEvent(kind, data)
        if kind == "message.delta":
            self._texts.append(event.content)
        elif kind in _PROGRESS and self._on_progress is not None:
            fraction = event.progress
            if fraction is not None:
                self._on_progress(_PROGRESS[kind], fraction)
        elif kind == "error" and self._error is None:
            self._error = event
            log.warning("%s: error event in a native chat stream: %s", self._url, sse.data[:300])
        return event

    def _end(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise self._fail("chat.end carried no result object", "bad_event")
        result = NativeChatResult.from_dict(raw)
        if self._error is not None:
            if not self._texts:
                self._texts.append(result.text)
            body = {**self._error.data, "result": raw}
            raise self._fail(f"the server sent an error: {self._error_text()}", "error_event", body)
        self._result = result
