"""Seam B: one model call. The :class:`ChatClient` protocol, :class:`CallEvent`, observers.

Every chat, completion, embedding, stream, load and unload of a
:class:`~lmstrix.Client` ends in exactly one :class:`CallEvent`, given to each of the
client's observers (``Client(observers=[...])``): a stream's event comes when it ends
(its last chunk, an error, or ``close()``). Events carry the request's parameters but
never the messages, the prompt, the input texts or the API token. An observer that
raises is logged and skipped; it never breaks the call.
"""

from __future__ import annotations

import logging
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

from ..types import Completion, Usage

if TYPE_CHECKING:
    from ..types import LoadedInstance, ModelInfo
    from ._replies import Messages
    from ._stream import ChatStream

__all__ = ["CallEvent", "CallScope", "ChatClient", "Observer", "call_parameters", "run_observed"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

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
class CallEvent:
    """What one model call did: given to observers when the call ends.

    ``operation`` is ``chat``, ``completion``, ``embedding``, ``load`` or ``unload``
    (``stream`` tells streamed calls apart). ``outcome`` is ``ok``, ``error`` (then
    ``error`` holds the exception) or ``closed`` (a stream closed before its end).
    ``parameters`` are the request's settings (``temperature``, ``max_tokens``,
    ``context_length``, the number of ``inputs``...), never its content. Timings are in
    seconds; ``time_to_first_token_s`` and the token rates are ``None`` where unknown:
    ``prefill_tokens_per_s`` is prompt tokens over the time to the first token,
    ``decode_tokens_per_s`` the generation rate. ``finish_reason`` is the answer's
    (``stop``, ``length``...).
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

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.outcome == "ok"


Observer = Callable[[CallEvent], None]
"""``observer(event)``: called once per call, in the thread that made it."""


def call_parameters(body: Mapping[str, Any]) -> Dict[str, Any]:
    """A request body's settings without its content (messages, prompt, inputs)."""
    return {k: v for k, v in body.items() if k not in _NOT_PARAMETERS}


class CallScope:
    """One call in progress: measures it and reports it once to the observers."""

    __slots__ = (
        "_lock",
        "_observers",
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
    ) -> None:
        self._observers = observers
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
        )
        if isinstance(result, Completion):
            event = _with_completion(event, result)
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
    scope = CallScope(observers, server, operation, model, call_parameters(body), stream=stream)
    try:
        result = run(scope)
    except Exception as exc:
        scope.finish(error=exc)
        raise
    if not stream:
        scope.finish(result)
    return result


def _with_completion(event: CallEvent, done: Completion) -> CallEvent:
    from dataclasses import replace

    stats, usage = done.stats, done.usage
    ttft = stats.time_to_first_token_s
    prompt = usage.prompt_tokens
    prefill = prompt / ttft if prompt and ttft else None
    return replace(
        event,
        served_model=done.model,
        usage=usage,
        time_to_first_token_s=ttft,
        prefill_tokens_per_s=prefill,
        decode_tokens_per_s=stats.tokens_per_second,
        finish_reason=done.finish_reason,
    )
