"""LM Studio's native chat (``POST /api/v1/chat``, LM Studio 0.4+) on the :class:`Client`.

:class:`NativeChatMixin` gives the client :meth:`~NativeChatMixin.respond`,
:meth:`~NativeChatMixin.stream_respond` and :meth:`~NativeChatMixin.conversation`.
Servers without the endpoint (LM Studio 0.3.x, llama.cpp and other OpenAI-only
servers) get an :class:`~lmstrix.errors.APIError` that says so: before anything is sent
when the client already knows the server's API, else from the server's answer (a 404,
or LM Studio's HTTP 200 "Unexpected endpoint").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Sequence, Union

from ..errors import APIError, APIStatusError, ConfigError
from ._errormap import error_for, error_message, parse_json

if TYPE_CHECKING:
    from typing import TypeVar

    from ..transport._stdlib import Response
    from ._calls import CallScope
    from ._conversation import Conversation
    from ._native_stream import NativeChatStream, ProgressCallback
    from ._native_types import NativeChatResult

    T = TypeVar("T")

__all__ = ["NativeChatMixin", "NativeInput", "native_body"]

NativeInput = Union[str, Sequence[Union[str, Mapping[str, Any]]]]
"""A prompt: text, or a list of items (``{"type": "message", "content": ...}``,
``{"type": "image", "data_url": ...}``; plain text in the list is a message item)."""

PATH = "/api/v1/chat"
OPTIONS = frozenset(
    (
        "system_prompt",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "repeat_penalty",
        "max_output_tokens",
        "reasoning",
        "context_length",
        "store",
        "previous_response_id",
        "integrations",
    )
)
"""The request fields :meth:`NativeChatMixin.respond` takes as keyword options."""
_CONTENT = ("system_prompt", "integrations")
"""Options that are content (or may hold an MCP server's headers): never in a CallEvent."""


def _settings(body: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _CONTENT}


def native_body(model: str, input: NativeInput, options: Mapping[str, Any]) -> Dict[str, Any]:
    """The request body; options that are ``None`` are left out.

    Raises:
        TypeError: an unknown option, or ``input`` that is neither text nor a list.
        ConfigError: a ``previous_response_id`` that does not start with ``resp_``.
    """
    unknown = set(options) - OPTIONS
    if unknown:
        raise TypeError(
            f"unknown native chat option(s): {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(OPTIONS))})"
        )
    if isinstance(input, str):
        wire_input: Any = input
    elif isinstance(input, (list, tuple)):
        wire_input = [{"type": "message", "content": i} if isinstance(i, str) else i for i in input]
    else:
        raise TypeError(f"input must be text or a list of items, not {type(input).__name__}")
    previous = options.get("previous_response_id")
    if previous is not None and not (isinstance(previous, str) and previous.startswith("resp_")):
        raise ConfigError(
            f"previous_response_id must be a response id starting with 'resp_' "
            f"(as NativeChatResult.response_id gives), not {previous!r}"
        )
    body: Dict[str, Any] = {"model": model, "input": wire_input}
    body.update((k, v) for k, v in options.items() if v is not None)
    return body


def missing_endpoint(status: int, body: Any) -> bool:
    """True when an answer says the server has no ``/api/v1/chat`` at all (rather than
    refusing the request): LM Studio's HTTP 200 "Unexpected endpoint", or a 404/405 that
    is not about the model."""
    message = error_message(body)
    if status == 200:
        return message is not None and "unexpected endpoint" in message.lower()
    if status not in (404, 405):
        return False
    if message is None:
        return True
    lowered = message.lower()
    return "model" not in lowered or "unexpected endpoint" in lowered


class NativeChatMixin:
    """The native chat methods of :class:`~lmstrix.Client` (see the module docstring)."""

    if TYPE_CHECKING:
        base_url: str
        _api: Optional[str]

        def _send(
            self,
            method: str,
            path: str,
            body: Optional[Mapping[str, Any]],
            *,
            stream: bool = False,
            operation: str = "models",
        ) -> Response: ...

        def _observed(
            self,
            operation: str,
            model: Optional[str],
            parameters: Mapping[str, Any],
            run: Callable[[Optional[CallScope]], T],
            *,
            stream: bool = False,
        ) -> T: ...

    def respond(self, model: str, input: NativeInput, **options: Any) -> NativeChatResult:
        """Ask ``model`` through LM Studio's native chat; the answer with its typed items.

        ``options``: ``system_prompt``, ``temperature``, ``top_p``, ``top_k``, ``min_p``,
        ``repeat_penalty``, ``max_output_tokens``, ``reasoning`` (``"off"``, ``"low"``,
        ``"medium"``, ``"high"``, ``"on"``), ``context_length`` (for this request),
        ``store`` (default true on the server: the answer gets a ``response_id``),
        ``previous_response_id`` (continue a stored conversation) and ``integrations``
        (MCP servers and plugins the server may call).

        Raises:
            APIError: the server has no native chat (LM Studio before 0.4, or not LM Studio).
            ConfigError: ``previous_response_id`` is not a response id.
            APIStatusError: the server refused the request (its subclasses say why).
        """
        body = native_body(model, input, options)
        run = lambda scope: self._respond(body, scope)  # noqa: E731
        return self._observed("respond", model, _settings(body), run)

    def stream_respond(
        self,
        model: str,
        input: NativeInput,
        *,
        on_progress: Optional[ProgressCallback] = None,
        **options: Any,
    ) -> NativeChatStream:
        """Like :meth:`respond`, streamed: a :class:`NativeChatStream` of named events.

        The request is sent before this returns. ``on_progress(kind, fraction)`` is
        called for each ``model_load.progress`` (``kind="model_load"``) and
        ``prompt_processing.progress`` (``kind="prompt_processing"``) event, in the
        thread that reads the stream.
        """
        body = native_body(model, input, options)
        body["stream"] = True

        def opened(scope: Optional[CallScope]) -> NativeChatStream:
            return self._open_native(body, scope, on_progress)

        return self._observed("respond", model, _settings(body), opened, stream=True)

    def conversation(self, model: str, **options: Any) -> Conversation:
        """A stored conversation with ``model``: ``say(text)`` continues it on the server
        (``store`` and ``previous_response_id``); ``options`` go with every turn."""
        from ._conversation import Conversation  # on use: `import lmstrix` stays light

        return Conversation(self.respond, model, **options)

    def _respond(self, body: Dict[str, Any], scope: Optional[CallScope]) -> NativeChatResult:
        self._require_native()
        model = body["model"]
        response = self._send("POST", PATH, body, operation="respond")
        try:
            answer = self._native_answer(response.status_code, response.read(), model)
        finally:
            response.close()
        from ._native_types import NativeChatResult

        result = NativeChatResult.from_dict(answer)
        if scope is not None:  # the event carries the answer's usage and timings
            scope.finish(result.to_completion())
        return result

    def _open_native(
        self,
        body: Dict[str, Any],
        scope: Optional[CallScope],
        on_progress: Optional[ProgressCallback],
    ) -> NativeChatStream:
        from ._native_stream import NativeChatStream

        self._require_native()
        model = body["model"]
        url = self.base_url + PATH
        response = self._send("POST", PATH, body, stream=True, operation="respond")
        content_type = response.headers.get("content-type", "")
        if response.status_code < 300 and "json" not in content_type:
            return NativeChatStream(
                response, url=url, model=model, on_progress=on_progress, scope=scope
            )
        try:  # an error, or a server that answered with one JSON body
            answer = self._native_answer(response.status_code, response.read(), model)
        finally:
            response.close()
        return NativeChatStream(
            None, url=url, model=model, on_progress=on_progress, scope=scope, whole=answer
        )

    def _native_answer(self, status: int, raw: bytes, model: str) -> Dict[str, Any]:
        url = self.base_url + PATH
        is_json, parsed = parse_json(raw)
        if missing_endpoint(status, parsed if is_json else None):
            said = error_message(parsed) if is_json else str(parsed)[:200]
            raise self._no_native(f"it answered HTTP {status}: {said}", status, parsed)
        err = error_for(status, parsed, url=url, model=model, is_json=is_json)
        if err is not None:
            raise err
        if not isinstance(parsed, dict):
            raise APIStatusError(
                f"{url} answered with something that is not a JSON object: {str(parsed)[:200]}",
                url=url,
                status_code=status,
                body=parsed,
                model=model,
            )
        return parsed

    def _require_native(self) -> None:
        api = self._api
        if api is not None and api != "v1":
            name = "LM Studio 0.3.x" if api == "v0" else "an OpenAI-compatible server"
            raise self._no_native(f"it speaks the {api!r} API ({name})")

    def _no_native(self, why: str, status: Optional[int] = None, body: Any = None) -> APIError:
        message = (
            f"the server at {self.base_url} has no native chat endpoint {PATH}: {why}. "
            "Native chat (respond, stream_respond, conversation) needs LM Studio 0.4 or "
            "newer; with other servers use chat() or stream_chat()"
        )
        if status is None:
            return APIError(message, url=self.base_url + PATH)
        return APIStatusError(message, url=self.base_url + PATH, status_code=status, body=body)
