"""Seam B: one model call. The :class:`ChatClient` protocol, :class:`CallEvent`, observers.

Every chat, completion, embedding, stream, load and unload of a
:class:`~lmstrix.Client` ends in exactly one :class:`CallEvent`, given to each of the
client's observers (``Client(observers=[...])``): a stream's event comes when it ends
(its last chunk, an error, or ``close()``). Events carry the request's parameters,
never the API token, and the content (messages, prompt, input texts, answer) only when
an observer asks for it with a true ``capture_content`` attribute (``AuditLog(...,
content=True)``, ``OpenTelemetry(capture_content=True)``). An observer that raises is
logged and skipped; it never breaks the call.

A long operation made of calls, a context search, is reported the same way by
:func:`run_operation`: one event at its end (operation ``context_search``), and before
its calls, to observers with an ``operation_started(scope)`` method (OpenTelemetry
opens the span its calls' spans nest in).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    runtime_checkable,
)

from .._log import logger
from ..types import Completion, Usage

if TYPE_CHECKING:
    from ..types import LoadedInstance, ModelInfo
    from ._replies import Messages
    from ._stream import ChatStream

__all__ = [
    "CallContent",
    "CallEvent",
    "CallScope",
    "ChatClient",
    "Observer",
    "call_parameters",
    "run_observed",
    "run_operation",
]

log = logger(__name__)

T = TypeVar("T")


# Body fields that carry content (or are set by the client itself): never in an event.
_NOT_PARAMETERS = frozenset(("model", "messages", "prompt", "input", "stream", "stream_options"))


@runtime_checkable
class ChatClient(Protocol):
    """What a model client offers: :class:`~lmstrix.Client` implements it, and so will
    pools, fallback chains and routers built over other ``ChatClient`` objects."""

    def list_models(self) -> List[ModelInfo]:
        """Every model the server offers."""
        ...

    def get_model(self, key: str) -> ModelInfo:
        """One model by key."""
        ...

    def load(
        self, key: str, *, context_length: Optional[int] = None, **options: Any
    ) -> LoadedInstance:
        """Load a model; the result says what context was applied."""
        ...

    def unload(self, instance_id: str) -> None:
        """Unload one loaded instance."""
        ...

    def chat(self, model: str, messages: Messages, **params: Any) -> Completion:
        """One chat answer."""
        ...

    def stream_chat(self, model: str, messages: Messages, **params: Any) -> ChatStream:
        """One chat answer, streamed."""
        ...

    def complete(self, model: str, prompt: str, **params: Any) -> Completion:
        """One plain-text completion."""
        ...

    def stream_complete(self, model: str, prompt: str, **params: Any) -> ChatStream:
        """One plain-text completion, streamed."""
        ...

    def embed(self, model: str, texts: Union[str, Sequence[str]]) -> List[List[float]]:
        """Embedding vectors, in the order of ``texts``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class CallContent:
    """What a call sent and got back, for observers that ask for it (``capture_content``).

    ``input`` is a chat's messages (a list of ``{"role", "content"}`` dicts), a
    completion's prompt or an embedding's texts; ``output`` the answer's text and
    ``reasoning`` its separated reasoning (``None`` when there is no answer: an
    embedding, an error, a stream closed early).
    """

    input: Any = None
    output: Optional[str] = None
    reasoning: Optional[str] = None


@dataclass(frozen=True)
class CallEvent:
    """What one model call did: given to observers when the call ends.

    ``operation`` is ``chat``, ``completion``, ``embedding``, ``respond`` (LM Studio 0.4's
    native chat), ``load``, ``unload`` or ``context_search`` (a whole search)
    (``stream`` tells streamed calls apart). ``outcome`` is ``ok``, ``error`` (then
    ``error`` holds the exception) or ``closed`` (a stream closed before its end).
    ``parameters`` are the request's settings (``temperature``, ``max_tokens``,
    ``context_length``, the number of ``inputs``, the names of the ``tools`` offered...),
    never its content. Timings are in
    seconds; ``time_to_first_token_s`` and the token rates are ``None`` where unknown:
    ``prefill_tokens_per_s`` is prompt tokens over the time to the first token,
    ``decode_tokens_per_s`` the generation rate. ``finish_reason`` is the answer's
    (``stop``, ``length``...). ``content`` is a :class:`CallContent` when an observer asked
    for it, else ``None``. ``result`` holds what an operation found (a context search: its
    limits, loads and requests).
    """

    server: str
    operation: str
    model: Optional[str]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    stream: bool = False
    outcome: str = "ok"
    error: Optional[BaseException] = None
    served_model: Optional[str] = None
    usage: Optional[Usage] = None
    started_at: float = 0.0
    total_s: float = 0.0
    time_to_first_token_s: Optional[float] = None
    prefill_tokens_per_s: Optional[float] = None
    decode_tokens_per_s: Optional[float] = None
    finish_reason: Optional[str] = None
    content: Optional[CallContent] = field(default=None, repr=False, compare=False)
    result: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.outcome == "ok"


Observer = Callable[[CallEvent], None]
"""``observer(event)``: called once per call, in the thread that made it."""


def call_parameters(body: Mapping[str, Any]) -> Dict[str, Any]:
    """A request body's settings without its content (messages, prompt, inputs); the
    tools offered are named, not copied whole (their schemas can be long)."""
    found = {k: v for k, v in body.items() if k not in _NOT_PARAMETERS}
    tools = found.get("tools")
    if isinstance(tools, list):
        found["tools"] = [_tool_name(tool) for tool in tools]
    return found


def _tool_name(tool: Any) -> str:
    if isinstance(tool, Mapping):
        function = tool.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return str(function["name"])
        if isinstance(tool.get("name"), str):
            return str(tool["name"])
        return str(tool.get("type", "?"))
    return "?"


class CallScope:
    """One call in progress: measures it and reports it once to the observers."""

    __slots__ = (
        "_lock",
        "_observers",
        "content",
        "done",
        "model",
        "operation",
        "parameters",
        "server",
        "started",
        "started_at",
        "stream",
    )

    def __init__(
        self,
        observers: Sequence[Observer],
        server: str,
        operation: str,
        model: Optional[str],
        parameters: Mapping[str, Any],
        *,
        stream: bool = False,
        content: Any = None,
    ) -> None:
        self._observers = observers
        self.content = content  # the input, when an observer captures content
        self._lock = threading.Lock()
        self.server, self.operation, self.model = server, operation, model
        self.parameters, self.stream = parameters, stream
        self.done = False
        self.started_at = time.time()
        self.started = time.perf_counter()

    def finish(
        self,
        result: Any = None,
        error: Optional[BaseException] = None,
        *,
        closed: bool = False,
    ) -> None:
        """Report the call (``result``: a :class:`Completion` when there is one); once."""
        with self._lock:
            if self.done:
                return
            self.done = True
        total = time.perf_counter() - self.started
        outcome = "error" if error is not None else ("closed" if closed else "ok")
        if isinstance(result, Completion):
            event = _completed_event(self, outcome, error, total, result)
        else:
            event = CallEvent(
                self.server,
                self.operation,
                self.model,
                self.parameters,
                self.stream,
                outcome,
                error,
                started_at=self.started_at,
                total_s=total,
                content=None if self.content is None else CallContent(self.content),
                result=result if isinstance(result, Mapping) else {},
            )
        for observer in self._observers:
            try:
                observer(event)
            except Exception:  # an observer never breaks the call
                log.exception("call observer %r failed on a %s event", observer, self.operation)


def run_observed(
    scope_of: Tuple[Sequence[Observer], str, str, Optional[str], Mapping[str, Any]],
    run: Callable[[Optional[CallScope]], T],
    *,
    stream: bool = False,
) -> T:
    """Run one call in a :class:`CallScope` made of ``(observers, server, operation,
    model, body or parameters)`` and report it (a stream reports itself at its end)."""
    observers, server, operation, model, body = scope_of
    content = _content_of(body) if captures_content(observers) else None
    scope = CallScope(
        observers, server, operation, model, call_parameters(body), stream=stream, content=content
    )
    try:
        result = run(scope)
    except Exception as exc:
        scope.finish(error=exc)
        raise
    if not stream:
        scope.finish(result)
    return result


def _completed_event(
    scope: CallScope,
    outcome: str,
    error: Optional[BaseException],
    total: float,
    done: Completion,
) -> CallEvent:
    stats, usage = done.stats, done.usage
    ttft = stats.time_to_first_token_s
    prompt = usage.prompt_tokens
    return CallEvent(
        scope.server,
        scope.operation,
        scope.model,
        scope.parameters,
        scope.stream,
        outcome,
        error,
        served_model=done.model,
        usage=usage,
        started_at=scope.started_at,
        total_s=total,
        time_to_first_token_s=ttft,
        prefill_tokens_per_s=prompt / ttft if prompt and ttft else None,
        decode_tokens_per_s=stats.tokens_per_second,
        finish_reason=done.finish_reason,
        content=None
        if scope.content is None
        else CallContent(scope.content, done.text, done.reasoning or None),
    )


def captures_content(observers: Sequence[Observer]) -> bool:
    """True when one of ``observers`` asks for calls' content (``capture_content``)."""
    return any(getattr(observer, "capture_content", False) is True for observer in observers)


def _content_of(body: Mapping[str, Any]) -> Any:
    """A request body's content: a chat's messages, a prompt, an embedding's texts."""
    for name in ("messages", "prompt", "input"):
        if name in body:
            return body[name]
    return None


def run_operation(
    observers: Sequence[Observer],
    scope_of: Tuple[str, str, Optional[str], Mapping[str, Any]],
    run: Callable[[], T],
    result_of: Callable[[T], Mapping[str, Any]],
) -> T:
    """Run a long operation made of calls, ``(server, operation, model, parameters)``,
    and report it as one event whose ``result`` is ``result_of(its return value)``.

    Observers with an ``operation_started(scope)`` method hear of it first, in this
    thread, before any of its calls.
    """
    server, operation, model, parameters = scope_of
    scope = CallScope(observers, server, operation, model, parameters)
    for observer in observers:
        started = getattr(observer, "operation_started", None)
        if callable(started):
            try:
                started(scope)
            except Exception:  # an observer never breaks the operation
                log.exception("observer %r failed on the start of a %s", observer, operation)
    try:
        value = run()
    except BaseException as exc:
        scope.finish(error=exc)
        raise
    scope.finish(result_of(value))
    return value
