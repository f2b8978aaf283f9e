"""`Client`: the LM Studio (and any OpenAI-compatible server) API, blocking and thread-safe.

One client holds one connection pool; share it between threads. It finds out once
which API the server speaks (LM Studio v1, v0, or OpenAI-only) and degrades
gracefully, and turns every failure into an lmstrix error that names the URL, the
model and what to do. Each HTTP exchange goes as a :class:`~lmstrix.Request` through
the middleware chain (retries included, see :mod:`lmstrix.middleware`) to the
transport; each model call ends in one :class:`~lmstrix.CallEvent` for the observers
(see :mod:`lmstrix.client._calls`).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .._closing import ClosedByWith
from .._log import logger
from ..config import Timeout, resolve_base_url, resolve_token
from ..errors import APIError, APIStatusError, ModelNotFoundError
from ..middleware import RetryMiddleware, RetryPolicy, build_chain
from ..transport._request import LABEL, OPERATION, READ_TIMEOUT, RETRY_IF_SENT, Request, frozen_map
from ..types import Completion, LoadedInstance, ModelInfo
from ._chain import ModelChoice, chainable
from ._continue import continuing_stream
from ._detect import detect_api, model_not_found
from ._downloads import DownloadsMixin
from ._errormap import checked_json, empty_answer_error, parse_json
from ._fitcontext import FitContextMixin
from ._native import NativeChatMixin
from ._replies import Messages, chat_body, check_served, embedding_rows, merge_rows
from ._stream import ChatStream, whole_answer
from ._structured import StructuredMixin
from ._tools import ToolsMixin

if TYPE_CHECKING:
    from typing import TypeVar, Union

    from ..middleware import CallNext, Middleware
    from ..registry import Registry
    from ..transport._stdlib import Response, Transport
    from ._calls import CallScope, Observer

    T = TypeVar("T")

__all__ = ["Client", "Messages"]

log = logger(__name__)

_OPERATIONS = ("models", "chat", "completion", "embedding", "unload", "respond")
_LOAD_KEYS = frozenset(
    ("eval_batch_size", "flash_attention", "num_experts", "offload_kv_cache_to_gpu", "ttl")
)


class Client(
    NativeChatMixin, DownloadsMixin, ToolsMixin, FitContextMixin, StructuredMixin, ClosedByWith
):
    """A blocking client for LM Studio's HTTP API (and any OpenAI-compatible server).

    Args:
        base_url: server URL; default ``$LMSTRIX_SERVER`` or ``http://localhost:1234``.
        api_token: bearer token; default ``$LM_API_TOKEN``, then ``$LMSTUDIO_API_TOKEN``.
        timeout: seconds (read timeout) or a :class:`~lmstrix.config.Timeout`.
        transport: how requests are sent; default a keep-alive stdlib transport.
        max_retries: extra tries for failures that are safe to retry (connection
            refused or reset before an answer, HTTP 429 and 503).
        strict_model: raise :class:`ModelNotFoundError` when the server answers with
            another model than the one asked for (default: log a warning).
        retry_backoff_s: the first retry's delay; it doubles with each retry (with
            jitter) up to ``retry_max_s``. A server's ``Retry-After`` is honoured
            instead, up to a minute.
        retry_max_s: the longest delay between two retries.
        retry: a :class:`~lmstrix.RetryPolicy`; replaces the three options above.
        middleware: callables ``m(request, call_next) -> Response`` wrapped around the
            transport, first outermost; the retry middleware runs outside them all, so
            they see every attempt.
        observers: callables given one :class:`~lmstrix.CallEvent` per model call.
        registry: a :class:`~lmstrix.Registry`; a fallback chain (a list of model keys)
            then skips models whose tested working context cannot hold the prompt.
        label: the user or tenant the calls belong to; each request carries it in its
            ``extensions["label"]`` for middleware (budgets, policy, usage records).
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        *,
        api_token: Optional[str] = None,
        timeout: Union[float, Timeout, None] = None,
        transport: Optional[Transport] = None,
        max_retries: int = 2,
        strict_model: bool = False,
        retry_backoff_s: float = 0.5,
        retry_max_s: float = 8.0,
        retry: Optional[RetryPolicy] = None,
        middleware: Sequence[Middleware] = (),
        observers: Sequence[Observer] = (),
        registry: Optional[Registry] = None,
        label: Optional[str] = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self.timeout = Timeout.coerce(timeout)
        self.retry_policy = retry or RetryPolicy.from_client_options(
            max_retries, retry_backoff_s, retry_max_s
        )
        self.max_retries = self.retry_policy.total
        self.strict_model = strict_model
        self.registry = registry  # for the fit check of fallback chains
        self.label = label
        self.retry_backoff_s = self.retry_policy.backoff_factor_s
        self.retry_max_s = self.retry_policy.backoff_max_s
        token = resolve_token(api_token)
        # The token lives only in this header map, which no repr, log or error shows.
        self._headers: Dict[str, str] = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "lmstrix",
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._header_map = frozen_map(self._headers)
        from ..transport._stdlib import (  # on first use: a light import
            StdlibTransport,
            as_transport,
        )

        if transport is None:
            transport = StdlibTransport()
        self._transport: Transport = as_transport(transport)
        self._observers = tuple(observers)
        # The chain is built once: with no middleware of yours and retries on, a request
        # costs one extra function call.
        chain = list(middleware)
        self._flushed = tuple(chain)
        if self.retry_policy.total > 0:
            chain.insert(0, RetryMiddleware(self.retry_policy))
        self._handler = build_chain(chain, _logged(self._transport.send))
        tag = {} if label is None else {LABEL: label}
        self._extensions = {op: frozen_map({**tag, OPERATION: op}) for op in _OPERATIONS}
        self._extensions["load"] = frozen_map(
            {**tag, OPERATION: "load", READ_TIMEOUT: self.timeout.load_s, RETRY_IF_SENT: False}
        )
        self._api: Optional[str] = None
        self._lock = threading.Lock()

    @property
    def observers(self) -> Tuple[Observer, ...]:
        """The observers each call of this client is reported to."""
        return self._observers

    def __repr__(self) -> str:
        auth = ", api_token='***'" if "Authorization" in self._headers else ""
        return f"Client(base_url={self.base_url!r}{auth})"

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickle as settings, never connections (see :mod:`lmstrix.client._remote`)."""
        from ._remote import client_settings, rebuilt

        return (rebuilt, (client_settings(self),))

    def close(self) -> None:
        """Close pooled connections; the client may not be used afterwards. Observers and
        middleware with a ``flush()`` (``AuditLog``, ``ResponseCache``) are flushed, not closed."""
        for part in (*self._observers, *self._flushed):
            getattr(part, "flush", _no_flush)()
        self._transport.close()

    # ------------------------------------------------------------------ detection

    @property
    def server_api(self) -> str:
        """``"v1"`` (LM Studio 0.4+), ``"v0"`` (LM Studio 0.3.x) or ``"openai"`` (others).

        Found out on first use (one or two requests) and remembered.
        """
        if self._api is None:
            self._detect()
        assert self._api is not None
        return self._api

    @property
    def supports_load(self) -> bool:
        """True when the server can load and unload models over HTTP (LM Studio 0.4+)."""
        return self.server_api == "v1"

    def _detect(self) -> List[Mapping[str, Any]]:
        """Find the API family; return the raw model rows of the answer that decided it."""
        api, rows = detect_api(
            lambda path: self._raw("GET", path), lambda: self._json("GET", "/v1/models"), self._url
        )
        with self._lock:
            self._api = api
        return rows

    # ------------------------------------------------------------------ models

    def list_models(self) -> List[ModelInfo]:
        """Every model the server offers, with load state where the server tells it.

        Uses ``/api/v1/models``, else ``/api/v0/models``, else ``/v1/models`` (which
        gives names only: no context length, type or load state).
        """
        if self._api is None:
            rows = self._detect()
        else:
            path, key = {
                "v1": ("/api/v1/models", "models"),
                "v0": ("/api/v0/models", "data"),
                "openai": ("/v1/models", "data"),
            }[self._api]
            body = self._json("GET", path)
            found = body.get(key) if isinstance(body, dict) else None
            rows = [r for r in found if isinstance(r, Mapping)] if isinstance(found, list) else []
        return merge_rows(rows)

    def get_model(self, key: str) -> ModelInfo:
        """One model by key, or :class:`ModelNotFoundError` listing close matches."""
        models = self.list_models()
        for info in models:
            if info.key == key or any(inst.id == key for inst in info.loaded_instances):
                return info
        raise self.model_not_found(key, [m.key for m in models])

    def model_not_found(self, key: str, known: Sequence[str]) -> ModelNotFoundError:
        """The error for an unknown model, suggesting close matches among ``known``."""
        return model_not_found(self.base_url, key, known)

    def loaded_instances(self) -> List[LoadedInstance]:
        """Every loaded instance on the server (empty on servers that do not say)."""
        return [inst for info in self.list_models() for inst in info.loaded_instances]

    def load(
        self, key: str, *, context_length: Optional[int] = None, **options: Any
    ) -> LoadedInstance:
        """Load a model (LM Studio 0.4+) and report the context that was really applied.

        ``options`` are further load settings the server knows (``flash_attention``,
        ``eval_batch_size``, ``num_experts``, ``offload_kv_cache_to_gpu``; ``ttl``: idle
        seconds before the server unloads it, where the server takes it). The result's
        ``context_length`` is read back from the server; when it differs from
        ``requested_context_length`` the server "auto-fitted" the load
        (``result.auto_fitted``).

        Raises:
            ModelNotFoundError: the server has no such model.
            ModelLoadError: the server refused or failed to load it.
            APIError: the server cannot load models over HTTP (older LM Studio).
        """
        parameters = {"context_length": context_length, **options}
        return self._observed(
            "load", key, parameters, lambda _: self._load(key, context_length, options)
        )

    def _load(
        self, key: str, context_length: Optional[int], options: Dict[str, Any]
    ) -> LoadedInstance:
        self._require_load("load a model")
        unknown = set(options) - _LOAD_KEYS
        if unknown:
            raise TypeError(f"unknown load option(s): {', '.join(sorted(unknown))}")
        body: Dict[str, Any] = {"model": key, "echo_load_config": True}
        if context_length is not None:
            body["context_length"] = int(context_length)
        body.update(options)
        started = time.perf_counter()
        answer = self._json("POST", "/api/v1/models/load", body, model=key, operation="load")
        instance = LoadedInstance.from_load_answer(
            answer, key, context_length, elapsed_s=time.perf_counter() - started
        )
        if instance.context_length is None:  # an older answer without load_config
            found = [i for i in self.loaded_instances() if i.id == instance.id]
            if found:
                instance = replace(
                    instance, context_length=found[0].context_length, parallel=found[0].parallel
                )
        if instance.auto_fitted:
            log.warning(
                "%s: asked to load %s at %s tokens, the server applied %s",
                self.base_url,
                key,
                context_length,
                instance.context_length,
            )
        return instance

    def unload(self, instance_id: str) -> None:
        """Unload one loaded instance (its id, as :meth:`load` or ``ps`` report it)."""

        def run(_: Optional[CallScope]) -> None:
            self._require_load("unload a model")
            body = {"instance_id": instance_id}
            self._json("POST", "/api/v1/models/unload", body, model=instance_id, operation="unload")

        self._observed("unload", instance_id, {}, run)

    def _require_load(self, what: str) -> None:
        if not self.supports_load:
            raise APIError(
                f"cannot {what}: the server at {self.base_url} has no load endpoint "
                f"(it speaks the {self.server_api!r} API); LM Studio 0.4 or newer can, "
                "otherwise load the model in the app or with `lms load`",
                url=self.base_url,
            )

    # ------------------------------------------------------------------ inference

    @chainable
    def chat(self, model: ModelChoice, messages: Messages, **params: Any) -> Completion:
        """Ask a chat model; ``messages`` is a list of ``{role, content}`` or plain text.

        ``params`` go into the request body as they are (``temperature``,
        ``max_tokens``, ``stop``, ``seed``, ``response_format``, ...). A list of model
        keys is a fallback chain (see :func:`~lmstrix.client._chain.run_chain`).
        """
        assert isinstance(model, str)  # @chainable hands a chain one key at a time
        body = {**chat_body(model, messages, params), "stream": False}
        return self._complete_once("/v1/chat/completions", body, model, "chat")

    @chainable
    def complete(self, model: ModelChoice, prompt: str, **params: Any) -> Completion:
        """Plain text completion (``/v1/completions``: no chat template applied)."""
        assert isinstance(model, str)  # @chainable hands a chain one key at a time
        body = {"model": model, "prompt": prompt, **params, "stream": False}
        return self._complete_once("/v1/completions", body, model, "completion")

    @chainable
    def stream_chat(self, model: ModelChoice, messages: Messages, **params: Any) -> ChatStream:
        """Like :meth:`chat`, but returns a :class:`ChatStream` of chunks as they arrive.

        The request is sent before this returns, so connection and status errors
        are raised here, not at the first chunk (and a fallback chain moves on).
        """
        assert isinstance(model, str)  # @chainable hands a chain one key at a time
        if "continue_on_cut" in params:  # a cut answer is continued (client/_continue.py)
            return continuing_stream(self, model, messages, params)
        body = chat_body(model, messages, params)
        return self._stream("/v1/chat/completions", body, model, "chat")

    @chainable
    def stream_complete(self, model: ModelChoice, prompt: str, **params: Any) -> ChatStream:
        """Like :meth:`complete`, streamed; chunks carry the new text."""
        assert isinstance(model, str)  # @chainable hands a chain one key at a time
        body = {"model": model, "prompt": prompt, **params}
        return self._stream("/v1/completions", body, model, "completion")

    def embed(self, model: str, texts: Union[str, Sequence[str]]) -> List[List[float]]:
        """Embedding vectors for ``texts``, in the same order."""
        items = [texts] if isinstance(texts, str) else list(texts)
        body = {"inputs": len(items), "input": items}  # the texts are content, not parameters
        return self._observed("embedding", model, body, lambda _: self._embed(model, items))

    def _embed(self, model: str, items: List[str]) -> List[List[float]]:
        body = {"model": model, "input": items}
        answer = self._json("POST", "/v1/embeddings", body, model=model, operation="embedding")
        return embedding_rows(answer, self._url("/v1/embeddings"), model)

    def _complete_once(
        self, path: str, body: Dict[str, Any], model: str, operation: str
    ) -> Completion:
        answer = lambda _: self._answer(path, body, model, operation)  # noqa: E731
        send = partial(self._observed, operation, model, body, answer)
        return self._send_checked(body, model, send)  # JSON asked: validated, asked again

    def _answer(self, path: str, body: Dict[str, Any], model: str, operation: str) -> Completion:
        started = time.perf_counter()
        answer = self._json("POST", path, body, model=model, operation=operation)
        done = Completion.from_wire(
            answer, chat=operation == "chat", elapsed_s=time.perf_counter() - started
        )
        if done.model:
            self._check_model(model, done.model)
        if done.is_empty:  # the same answer streamed raises the same error
            raise empty_answer_error(self._url(path), model, answer)
        return done

    def _stream(self, path: str, body: Dict[str, Any], model: str, kind: str) -> ChatStream:
        body["stream"] = True
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {})}
        body["stream_options"].setdefault("include_usage", True)
        opened = lambda scope: self._open_stream(path, body, model, kind, scope)  # noqa: E731
        send = partial(self._observed, kind, model, body, opened, stream=True)
        return self._send_checked(body, model, send, stream=True)  # JSON asked: checked

    def _open_stream(
        self, path: str, body: Dict[str, Any], model: str, kind: str, scope: Optional[CallScope]
    ) -> ChatStream:
        started = time.perf_counter()
        response = self._send("POST", path, body, stream=True, operation=kind)
        url = self._url(path)
        # Errors (and some servers' non-streamed answers) come back as one JSON body.
        whole = whole_answer(response, url=url, model=model, chat=kind == "chat", started=started)
        return ChatStream(
            response,
            url=url,
            model=model,
            started=started,
            kind=kind,
            on_model=lambda served: self._check_model(model, served),
            whole=whole,
            scope=scope,
        )

    def _observed(
        self,
        operation: str,
        model: Optional[str],
        parameters: Mapping[str, Any],
        run: Callable[[Optional[CallScope]], T],
        *,
        stream: bool = False,
    ) -> T:
        """Run one model call; with observers, report it (a stream reports at its end).

        ``parameters`` may be the whole request body: its content is left out here.
        """
        if not self._observers:
            return run(None)
        from ._calls import run_observed  # only clients with observers load it

        scope_of = (self._observers, self.base_url, operation, model, parameters)
        return run_observed(scope_of, run, stream=stream)

    def _check_model(self, asked: str, served: str) -> None:
        check_served(self.base_url, asked, served, strict=self.strict_model)

    # ------------------------------------------------------------------ plumbing

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _raw(self, method: str, path: str) -> tuple:  # type: ignore[type-arg]
        """A request whose status the caller inspects itself (used for detection)."""
        response = self._send(method, path, None, operation="models")
        return response.status_code, parse_json(response.read())[1]

    def _json(
        self,
        method: str,
        path: str,
        body: Optional[Mapping[str, Any]] = None,
        *,
        model: Optional[str] = None,
        operation: str = "models",
    ) -> Dict[str, Any]:
        response = self._send(method, path, body, operation=operation)
        url = self._url(path)
        parsed = checked_json(response.status_code, response.read(), url=url, model=model)
        if not isinstance(parsed, dict):
            raise APIStatusError(
                f"{url} answered with something that is not a JSON object: {str(parsed)[:200]}",
                url=url,
                status_code=response.status_code,
                body=parsed,
                model=model,
            )
        return parsed

    def _send(
        self,
        method: str,
        path: str,
        body: Optional[Mapping[str, Any]],
        *,
        stream: bool = False,
        operation: str = "models",
    ) -> Response:
        """Send one request down the middleware chain (retries are middleware too)."""
        request = Request(
            method,
            self.base_url + path,
            self._header_map,
            None if body is None else json.dumps(body).encode("utf-8"),
            self.timeout,
            stream,
            self._extensions[operation],
        )
        return self._handler(request)


def _logged(send: CallNext) -> CallNext:
    """``send``, saying at debug level each request it sends: retries each time, and not
    the requests a middleware answered itself (a cache hit, a refused quota)."""

    def send_request(request: Request) -> Response:
        log.debug("%s %s", request.method, request.url)
        return send(request)

    return send_request


def _no_flush() -> None:
    """What ``close()`` calls for an observer or middleware without ``flush()``."""
