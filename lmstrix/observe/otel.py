"""OpenTelemetry spans and metrics for model calls, after the GenAI semantic conventions.

Needs the extra ``[otel]`` (``opentelemetry-api``; an SDK to export anything). This is
the only module of lmstrix that imports ``opentelemetry``. :class:`OpenTelemetry` is an
observer: ``Client(observers=[OpenTelemetry()])``. Each call becomes one span of kind
CLIENT named ``{operation} {model}`` (``chat``, ``text_completion``, ``embeddings``;
``load`` and ``unload`` for model loads), recorded when the call ends with its real start
and end times, plus the metrics ``gen_ai.client.operation.duration``,
``gen_ai.client.token.usage`` and (streams) ``gen_ai.client.operation.time_to_first_chunk``.

A context search becomes a span of kind INTERNAL named ``context_search {model}``, opened
when the search starts, so the spans of its loads and chats nest in it. With
``capture_content``, chat and completion spans carry ``gen_ai.input.messages`` and
``gen_ai.output.messages`` (JSON, in the conventions' role-and-parts shape).
"""

from __future__ import annotations

import json
import os
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

from opentelemetry import context, metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .._version import __version__

if TYPE_CHECKING:
    from ..client import Client
    from ..client._calls import CallContent, CallEvent, CallScope

__all__ = ["CAPTURE_CONTENT_ENV", "OpenTelemetry"]


CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

# lmstrix operation -> gen_ai.operation.name
_OPERATIONS = {
    "chat": "chat",
    "respond": "chat",  # LM Studio 0.4's native chat
    "completion": "text_completion",
    "embedding": "embeddings",
}
# request parameter -> gen_ai.request.* attribute
_REQUEST = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "n": "gen_ai.request.choice.count",
    "stop": "gen_ai.request.stop_sequences",
    "encoding_format": "gen_ai.request.encoding_formats",
}
# Buckets the conventions advise.
_DURATION_BUCKETS = tuple(0.01 * 2**i for i in range(14))  # 0.01, 0.02, 0.04, ... 81.92
_TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))  # 1, 4, 16, ... 67108864

Attributes = Dict[str, Union[str, bool, int, float, Sequence[str]]]


def _capture_from_environment() -> bool:
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() == "true"


class OpenTelemetry:
    """An observer that turns each call into a GenAI span and GenAI client metrics.

    ``tracer_provider`` and ``meter_provider`` default to the global ones
    (``opentelemetry.trace.set_tracer_provider``...). ``gen_ai.provider.name`` is
    ``provider_name`` when given; otherwise ``lmstudio`` for a server known to speak LM
    Studio's API (one that loaded or unloaded a model, or one added with
    :meth:`add_client`) and ``openai`` (an OpenAI-compatible server) for the rest.

    ``capture_content`` (default: ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
    is ``true``) records the messages and the answer on chat and completion spans
    (``gen_ai.input.messages``, ``gen_ai.output.messages``); without it no content is
    recorded. A context search is a span of its own, the parent of its calls' spans.
    """

    def __init__(
        self,
        tracer_provider: Optional[trace.TracerProvider] = None,
        meter_provider: Optional[metrics.MeterProvider] = None,
        capture_content: Optional[bool] = None,
        *,
        provider_name: Optional[str] = None,
    ) -> None:
        self.capture_content = (
            _capture_from_environment() if capture_content is None else capture_content
        )
        self.provider_name = provider_name
        self._providers: Dict[str, str] = {}
        self._lock = threading.Lock()
        self._open = threading.local()  # this thread's open operation spans (a stack)
        self._tracer = trace.get_tracer("lmstrix", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("lmstrix", __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self._first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed answer.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )

    def __repr__(self) -> str:
        return f"OpenTelemetry(capture_content={self.capture_content})"

    def add_client(self, client: Client) -> Client:
        """Record which API ``client``'s server speaks (found out now if not yet known:
        one or two requests); returns the client."""
        provider = "lmstudio" if client.server_api in ("v1", "v0") else "openai"
        with self._lock:
            self._providers[client.base_url] = provider
        return client

    def provider_for(self, server: str) -> str:
        """The ``gen_ai.provider.name`` used for ``server``."""
        if self.provider_name is not None:
            return self.provider_name
        with self._lock:
            return self._providers.get(server, "openai")

    def operation_started(self, scope: CallScope) -> None:
        """Open the span of a long operation (a context search) in this thread, so the
        spans of its calls nest in it; it ends with the operation's event."""
        address, port = _address(scope.server)
        attributes: Attributes = {"gen_ai.request.model": scope.model or ""}
        if address:
            attributes["server.address"] = address
        if port is not None:
            attributes["server.port"] = port
        for name, value in scope.parameters.items():
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                attributes[f"lmstrix.search.{name}"] = value
        span = self._tracer.start_span(
            f"{scope.operation} {scope.model or ''}".rstrip(),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=int(scope.started_at * 1e9),
        )
        token = context.attach(trace.set_span_in_context(span))
        stack = getattr(self._open, "spans", None)
        if stack is None:
            stack = self._open.spans = []
        stack.append((scope.operation, span, token))

    def _end_operation(self, event: CallEvent) -> bool:
        """End the span :meth:`operation_started` opened for ``event``; False if none."""
        stack = getattr(self._open, "spans", None)
        if not stack or stack[-1][0] != event.operation:
            return False
        _, span, token = stack.pop()
        context.detach(token)
        for name, value in event.result.items():
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                span.set_attribute(f"lmstrix.search.{name}", value)
        if event.error is not None:
            kind = type(event.error)
            span.set_attribute("error.type", f"{kind.__module__}.{kind.__qualname__}")
            span.set_status(Status(StatusCode.ERROR, kind.__name__))
        span.end(end_time=int((event.started_at + event.total_s) * 1e9))
        return True

    def __call__(self, event: CallEvent) -> None:
        """Record one finished call as a span and as metrics."""
        if event.operation == "context_search" and self._end_operation(event):
            return
        if event.operation in ("load", "unload") and event.ok:
            with self._lock:  # only LM Studio loads models over HTTP
                self._providers.setdefault(event.server, "lmstudio")
        common = self._common(event)
        attributes: Attributes = dict(common)
        attributes.update(_request_attributes(event.parameters))
        attributes.update(_result_attributes(event))
        if self.capture_content and event.content is not None:
            attributes.update(_content_attributes(event.content, event.finish_reason))
        start = int(event.started_at * 1e9)
        span = self._tracer.start_span(
            f"{common['gen_ai.operation.name']} {event.model or ''}".rstrip(),
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        if event.error is not None:
            span.set_status(Status(StatusCode.ERROR, type(event.error).__name__))
        span.end(end_time=start + int(event.total_s * 1e9))
        self._record_metrics(event, common)

    def _common(self, event: CallEvent) -> Attributes:
        """The attributes spans and metrics share."""
        out: Attributes = {
            "gen_ai.operation.name": _OPERATIONS.get(event.operation, event.operation),
            "gen_ai.provider.name": self.provider_for(event.server),
        }
        if event.model:
            out["gen_ai.request.model"] = event.model
        if event.served_model:
            out["gen_ai.response.model"] = event.served_model
        address, port = _address(event.server)
        if address:
            out["server.address"] = address
        if port is not None:
            out["server.port"] = port
        if event.error is not None:
            kind = type(event.error)
            out["error.type"] = f"{kind.__module__}.{kind.__qualname__}"
        return out

    def _record_metrics(self, event: CallEvent, common: Attributes) -> None:
        self._duration.record(event.total_s, attributes=common)
        usage = event.usage
        if usage is not None:
            for kind, count in (
                ("input", usage.prompt_tokens),
                ("output", usage.completion_tokens),
            ):
                if count is not None:
                    self._tokens.record(count, attributes={**common, "gen_ai.token.type": kind})
        if event.stream and event.time_to_first_token_s is not None:
            self._first_chunk.record(event.time_to_first_token_s, attributes=common)


def _address(server: str) -> Tuple[Optional[str], Optional[int]]:
    parts = urlsplit(server)
    try:
        port = parts.port
    except ValueError:  # not a number: say nothing about the port
        return parts.hostname, None
    if port is None and parts.scheme in ("http", "https"):
        port = 443 if parts.scheme == "https" else 80
    return parts.hostname, port


def _request_attributes(parameters: Mapping[str, Any]) -> Attributes:
    out: Attributes = {}
    for name, value in parameters.items():
        attribute = _REQUEST.get(name)
        if attribute is None:
            if name in ("context_length", "inputs") and isinstance(value, int):
                out[f"lmstrix.request.{name}"] = value  # loads and embeddings
            continue
        if attribute.endswith(("stop_sequences", "encoding_formats")):
            items: List[str] = [value] if isinstance(value, str) else list(value or [])
            out[attribute] = [str(v) for v in items]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[attribute] = value
    response_format = parameters.get("response_format")
    if isinstance(response_format, Mapping):
        kind = str(response_format.get("type", "text"))
        out["gen_ai.output.type"] = "json" if kind.startswith("json") else kind
    return out


def _result_attributes(event: CallEvent) -> Attributes:
    out: Attributes = {"lmstrix.outcome": event.outcome, "lmstrix.stream": event.stream}
    finish = event.finish_reason
    if isinstance(finish, str):
        out["gen_ai.response.finish_reasons"] = [finish]
    usage = event.usage
    if usage is not None and usage.prompt_tokens is not None:
        out["gen_ai.usage.input_tokens"] = usage.prompt_tokens
    if usage is not None and usage.completion_tokens is not None:
        out["gen_ai.usage.output_tokens"] = usage.completion_tokens
    if event.time_to_first_token_s is not None:
        out["lmstrix.time_to_first_token_s"] = event.time_to_first_token_s
    for name, rate in (
        ("lmstrix.prefill_tokens_per_s", event.prefill_tokens_per_s),
        ("lmstrix.decode_tokens_per_s", event.decode_tokens_per_s),
    ):
        if rate is not None:
            out[name] = rate
    return out


def _content_attributes(content: CallContent, finish_reason: Optional[str]) -> Attributes:
    """``gen_ai.input.messages`` / ``gen_ai.output.messages`` of a chat or completion."""
    out: Attributes = {}
    sent = content.input
    if isinstance(sent, str):  # a completion's prompt
        messages: List[Dict[str, Any]] = [_message("user", sent)]
    elif isinstance(sent, list) and all(isinstance(m, Mapping) for m in sent):
        messages = [_message(str(m.get("role", "user")), m.get("content")) for m in sent]
    else:
        return out  # an embedding's texts: no messages
    out["gen_ai.input.messages"] = json.dumps(messages, ensure_ascii=False)
    if content.output is not None:
        answer = _message("assistant", content.output)
        if content.reasoning:
            answer["parts"].insert(0, {"type": "reasoning", "content": content.reasoning})
        answer["finish_reason"] = finish_reason or "stop"
        out["gen_ai.output.messages"] = json.dumps([answer], ensure_ascii=False)
    return out


def _message(role: str, text: Any) -> Dict[str, Any]:
    if isinstance(text, list):  # OpenAI content parts: keep the text ones
        parts = [
            {"type": "text", "content": str(p.get("text", ""))}
            for p in text
            if isinstance(p, Mapping) and p.get("type") == "text"
        ]
    else:
        parts = [{"type": "text", "content": "" if text is None else str(text)}]
    return {"role": role, "parts": parts}
