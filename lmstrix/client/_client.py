"""`Client`: the LM Studio (and any OpenAI-compatible server) API, blocking and thread-safe.

One client holds one connection pool; share it between threads. It finds out once
which API the server speaks (LM Studio v1, v0, or OpenAI-only) and degrades
gracefully, retries only what is safe, and turns every failure into an lmstrix error
that names the URL, the model and what to do.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..config import Timeout, resolve_base_url, resolve_token
from ..errors import APIConnectionError, APIError, APIStatusError, ModelNotFoundError
from ..types import Completion, LoadedInstance, ModelInfo, Usage
from ._errormap import error_for, parse_json
from ._replies import Messages, merge_rows, messages_of, same_model, stats_of
from ._stream import ChatStream

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Type

    from ..transport._stdlib import Response, Transport

__all__ = ["Client", "Messages"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

_RETRY_STATUSES = (429, 503)
_LOAD_KEYS = frozenset(
    ("eval_batch_size", "flash_attention", "num_experts", "offload_kv_cache_to_gpu")
)


class Client:
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
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self.timeout = Timeout.coerce(timeout)
        self.max_retries = max(0, int(max_retries))
        self.strict_model = strict_model
        self.retry_backoff_s = retry_backoff_s
        self.retry_max_s = retry_max_s
        token = resolve_token(api_token)
        # The token lives only in this header map, which no repr, log or error shows.
        self._headers: Dict[str, str] = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "lmstrix",
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        if transport is None:
            from ..transport._stdlib import StdlibTransport

            transport = StdlibTransport()
        self._transport: Transport = transport
        self._api: Optional[str] = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        auth = ", api_token='***'" if "Authorization" in self._headers else ""
        return f"Client(base_url={self.base_url!r}{auth})"

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickle as settings (see :mod:`lmstrix.client._remote`), never as connections."""
        from ._remote import client_settings, rebuilt

        return (rebuilt, (client_settings(self),))

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections. The client may not be used afterwards."""
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
        for api, path, key in (
            ("v1", "/api/v1/models", "models"),
            ("v0", "/api/v0/models", "data"),
        ):
            status, body = self._raw("GET", path)
            if status == 200 and isinstance(body, dict) and isinstance(body.get(key), list):
                with self._lock:
                    self._api = api
                return [row for row in body[key] if isinstance(row, Mapping)]
            if status in (401, 403):
                raise error_for(status, body, url=self._url(path)) or APIError("unreachable")
        body = self._json("GET", "/v1/models")
        rows = body.get("data") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise APIStatusError(
                f"{self._url('/v1/models')} did not answer like LM Studio or an "
                "OpenAI-compatible server (no model list); check the server URL",
                url=self._url("/v1/models"),
                status_code=200,
                body=body,
            )
        with self._lock:
            self._api = "openai"
        return [row for row in rows if isinstance(row, Mapping)]

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
        import difflib

        close = difflib.get_close_matches(key, list(known), n=3, cutoff=0.4)
        lowered = key.lower()
        close += [k for k in known if lowered in k.lower() and k not in close][:3]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return ModelNotFoundError(
            f"model {key!r} is not on the server at {self.base_url}{hint} "
            "(`lmstrix list` shows them all)",
            url=self.base_url,
            status_code=404,
            model=key,
        )

    def loaded_instances(self) -> List[LoadedInstance]:
        """Every loaded instance on the server (empty on servers that do not say)."""
        return [inst for info in self.list_models() for inst in info.loaded_instances]

    def load(
        self, key: str, *, context_length: Optional[int] = None, **options: Any
    ) -> LoadedInstance:
        """Load a model (LM Studio 0.4+) and report the context that was really applied.

        ``options`` are further load settings the server knows (``flash_attention``,
        ``eval_batch_size``, ``num_experts``, ``offload_kv_cache_to_gpu``). The result's
        ``context_length`` is read back from the server; when it differs from
        ``requested_context_length`` the server "auto-fitted" the load
        (``result.auto_fitted``).

        Raises:
            ModelNotFoundError: the server has no such model.
            ModelLoadError: the server refused or failed to load it.
            APIError: the server cannot load models over HTTP (older LM Studio).
        """
        self._require_load("load a model")
        unknown = set(options) - _LOAD_KEYS
        if unknown:
            raise TypeError(f"unknown load option(s): {', '.join(sorted(unknown))}")
        body: Dict[str, Any] = {"model": key, "echo_load_config": True}
        if context_length is not None:
            body["context_length"] = int(context_length)
        body.update(options)
        started = time.perf_counter()
        answer = self._json(
            "POST", "/api/v1/models/load", body, model=key, read_s=self.timeout.load_s, load=True
        )
        instance_id = str(answer.get("instance_id") or key)
        config = answer.get("load_config")
        applied = config.get("context_length") if isinstance(config, dict) else None
        parallel = config.get("parallel") if isinstance(config, dict) else None
        if not isinstance(applied, int):
            found = [i for i in self.loaded_instances() if i.id == instance_id]
            applied = found[0].context_length if found else None
            parallel = found[0].parallel if found else None
        load_time = answer.get("load_time_seconds")
        instance = LoadedInstance(
            id=instance_id,
            model_key=key,
            context_length=applied,
            requested_context_length=context_length,
            parallel=parallel if isinstance(parallel, int) else None,
            load_time_s=float(load_time)
            if isinstance(load_time, (int, float))
            else time.perf_counter() - started,
            raw=answer,
        )
        if instance.auto_fitted:
            log.warning(
                "%s: asked to load %s at %s tokens, the server applied %s",
                self.base_url,
                key,
                context_length,
                applied,
            )
        return instance

    def unload(self, instance_id: str) -> None:
        """Unload one loaded instance (its id, as :meth:`load` or ``ps`` report it)."""
        self._require_load("unload a model")
        self._json("POST", "/api/v1/models/unload", {"instance_id": instance_id}, model=instance_id)

    def _require_load(self, what: str) -> None:
        if not self.supports_load:
            raise APIError(
                f"cannot {what}: the server at {self.base_url} has no load endpoint "
                f"(it speaks the {self.server_api!r} API); LM Studio 0.4 or newer can, "
                "otherwise load the model in the app or with `lms load`",
                url=self.base_url,
            )

    # ------------------------------------------------------------------ inference

    def chat(self, model: str, messages: Messages, **params: Any) -> Completion:
        """Ask a chat model; ``messages`` is a list of ``{role, content}`` or plain text.

        ``params`` go into the request body as they are (``temperature``,
        ``max_tokens``, ``stop``, ``seed``, ``response_format``, ...).
        """
        body = {"model": model, "messages": messages_of(messages), **params, "stream": False}
        return self._complete_once("/v1/chat/completions", body, model, chat=True)

    def complete(self, model: str, prompt: str, **params: Any) -> Completion:
        """Plain text completion (``/v1/completions``: no chat template applied)."""
        body = {"model": model, "prompt": prompt, **params, "stream": False}
        return self._complete_once("/v1/completions", body, model, chat=False)

    def stream_chat(self, model: str, messages: Messages, **params: Any) -> ChatStream:
        """Like :meth:`chat`, but returns a :class:`ChatStream` of chunks as they arrive.

        The request is sent before this returns, so connection and status errors
        are raised here, not at the first chunk.
        """
        body = {"model": model, "messages": messages_of(messages), **params}
        return self._stream("/v1/chat/completions", body, model, "chat")

    def stream_complete(self, model: str, prompt: str, **params: Any) -> ChatStream:
        """Like :meth:`complete`, streamed; chunks carry the new text."""
        body = {"model": model, "prompt": prompt, **params}
        return self._stream("/v1/completions", body, model, "completion")

    def embed(self, model: str, texts: Union[str, Sequence[str]]) -> List[List[float]]:
        """Embedding vectors for ``texts``, in the same order."""
        items = [texts] if isinstance(texts, str) else list(texts)
        answer = self._json("POST", "/v1/embeddings", {"model": model, "input": items}, model=model)
        rows = answer.get("data")
        if not isinstance(rows, list):
            raise APIStatusError(
                f"{self._url('/v1/embeddings')} answered without embeddings",
                url=self._url("/v1/embeddings"),
                status_code=200,
                body=answer,
                model=model,
            )
        rows = sorted(rows, key=lambda r: r.get("index", 0) if isinstance(r, dict) else 0)
        return [[float(x) for x in r.get("embedding", [])] for r in rows if isinstance(r, dict)]

    def _complete_once(
        self, path: str, body: Dict[str, Any], model: str, *, chat: bool
    ) -> Completion:
        started = time.perf_counter()
        answer = self._json("POST", path, body, model=model)
        elapsed = time.perf_counter() - started
        choices = answer.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else {}
        choice = choice if isinstance(choice, dict) else {}
        if chat:
            message = choice.get("message")
            message = message if isinstance(message, dict) else {}
            text = message.get("content") or ""
            reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        else:
            text, reasoning = choice.get("text") or "", ""
        usage_raw = answer.get("usage")
        usage = Usage.from_dict(usage_raw) if isinstance(usage_raw, dict) else Usage()
        server_model = answer.get("model") if isinstance(answer.get("model"), str) else None
        if server_model:
            self._check_model(model, server_model)
        return Completion(
            text=str(text),
            finish_reason=choice.get("finish_reason"),
            model=server_model,
            usage=usage,
            stats=stats_of(answer.get("stats"), elapsed, usage),
            reasoning=str(reasoning),
            raw=answer,
        )

    def _stream(self, path: str, body: Dict[str, Any], model: str, kind: str) -> ChatStream:
        body["stream"] = True
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {})}
        body["stream_options"].setdefault("include_usage", True)
        started = time.perf_counter()
        response = self._send("POST", path, body, stream=True)
        url = self._url(path)
        if response.status_code >= 300 or "json" in response.headers.get("content-type", ""):
            # Errors (and some servers' non-streamed answers) come back as one JSON body.
            try:
                raw = response.read()
            finally:
                response.close()
            is_json, parsed = parse_json(raw)
            err = error_for(response.status_code, parsed, url=url, model=model, is_json=is_json)
            if err is not None:
                raise err
            from ..transport._stdlib import BufferedResponse

            response = BufferedResponse(response.status_code, response.headers, raw)
        return ChatStream(
            response,
            url=url,
            model=model,
            started=started,
            kind=kind,
            on_model=lambda served: self._check_model(model, served),
        )

    def _check_model(self, asked: str, served: str) -> None:
        if same_model(asked, served):
            return
        message = (
            f"asked {self.base_url} for model {asked!r} but {served!r} answered; "
            "the server may serve whatever is loaded when a name is unknown"
        )
        if self.strict_model:
            raise ModelNotFoundError(message, url=self.base_url, status_code=200, model=asked)
        log.warning("%s", message)

    # ------------------------------------------------------------------ plumbing

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _raw(self, method: str, path: str) -> tuple:  # type: ignore[type-arg]
        """A request whose status the caller inspects itself (used for detection)."""
        response = self._send(method, path, None)
        return response.status_code, parse_json(response.read())[1]

    def _json(
        self,
        method: str,
        path: str,
        body: Optional[Mapping[str, Any]] = None,
        *,
        model: Optional[str] = None,
        read_s: Optional[float] = None,
        load: bool = False,
    ) -> Dict[str, Any]:
        response = self._send(method, path, body, read_s=read_s, load=load)
        url = self._url(path)
        is_json, parsed = parse_json(response.read())
        err = error_for(response.status_code, parsed, url=url, model=model, is_json=is_json)
        if err is not None:
            raise err
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
        read_s: Optional[float] = None,
        load: bool = False,
    ) -> Response:
        """Send with retries: only where the request surely did not run, or 429/503."""
        url = self._url(path)
        data = None if body is None else json.dumps(body).encode("utf-8")
        attempt = 0
        while True:
            log.debug("%s %s (try %d)", method, url, attempt + 1)
            try:
                response = self._transport.request(
                    method,
                    url,
                    headers=self._headers,
                    body=data,
                    timeout=self.timeout,
                    read_timeout_s=read_s,
                    stream=stream,
                )
            except APIConnectionError as exc:
                # A refused connection never reached the server. A reset before any
                # answer is retried too, except for loads: a load that crashed the
                # server must not be repeated blindly.
                sent = getattr(exc, "sent", True)
                retry = not sent or (not load and not isinstance(exc, TimeoutError))
                if not retry or attempt >= self.max_retries:
                    raise
                delay = self._backoff(attempt, None)
            else:
                if response.status_code not in _RETRY_STATUSES or attempt >= self.max_retries:
                    return response
                retry_after = response.headers.get("retry-after")
                response.close()
                delay = self._backoff(attempt, retry_after)
            log.info("retrying %s %s in %.2f s", method, url, delay)
            time.sleep(delay)
            attempt += 1

    def _backoff(self, attempt: int, retry_after: Optional[str]) -> float:
        if retry_after is not None:
            try:
                seconds = float(retry_after)
            except ValueError:
                seconds = -1.0
            if seconds >= 0:
                return min(seconds, max(self.retry_max_s, 60.0))
        base = min(self.retry_max_s, self.retry_backoff_s * (2.0**attempt))
        return base * (0.5 + random.random() / 2)  # jitter spreads out retrying clients
