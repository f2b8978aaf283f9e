"""The simulator's endpoints: which paths exist in each API mode, and what each one does.

Each endpoint is a function ``(exchange, body) -> None`` that answers through the
:class:`Exchange` (a JSON reply or a stream); errors are raised as :class:`SimError`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Protocol, Sequence, Tuple
from urllib.parse import unquote

from . import _shapes as shapes
from ._continue import answer_pieces, continued_from
from ._downloads import download_route
from ._engine import Engine, SimError, _Instance
from ._models import SimModel, answer_prompt, chat_prompt_text, embedding_vector
from ._native import native_chat
from ._prompted import json_mode_schema
from ._structured import schema_asked, schema_words
from ._tools import answer_tool_calls, tool_turn

__all__ = ["API_MODES", "Exchange", "OVERFLOW_STREAM_MODES", "Settings", "StreamSink", "route"]

API_MODES = ("v1", "v0", "openai")
"""The server generations the simulator can pretend to be."""

OVERFLOW_STREAM_MODES = ("error_event", "empty")
"""How a streamed request whose prompt overflows the context is answered."""

LOAD_KEYS = frozenset(
    {
        "model",
        "context_length",
        "eval_batch_size",
        "flash_attention",
        "num_experts",
        "offload_kv_cache_to_gpu",
        "echo_load_config",
    }
)


@dataclass(frozen=True)
class Settings:
    """Per-server behaviour switches (see :class:`~lmstrix.testing.FakeLMStudio`)."""

    api: str = "v1"
    api_token: Optional[str] = field(default=None, repr=False)
    lenient_model_names: bool = False
    unknown_path_status: Optional[int] = None
    overflow_stream: str = "error_event"
    load_ttl: bool = False


class StreamSink(Protocol):
    """Where a streamed reply goes; it applies stream faults on its own."""

    def content(self, event: Dict[str, Any], name: Optional[str] = None) -> bool:
        """Send one content event (named ``name`` when given); False means a fault ended
        the stream (stop sending)."""
        ...

    def finish(self, tail: Sequence[Dict[str, Any]], *, done: bool) -> None:
        """Send the closing events (and ``data: [DONE]`` when ``done``), then end the body."""
        ...


class Exchange(Protocol):
    """One request being answered (implemented by the HTTP handler)."""

    @property
    def engine(self) -> Engine:
        """The simulator state."""
        ...

    @property
    def settings(self) -> Settings:
        """The server's settings."""
        ...

    def send_json(self, status: int, obj: Any) -> None:
        """Reply with a JSON body."""
        ...

    def open_stream(self) -> StreamSink:
        """Start a 200 ``text/event-stream`` reply."""
        ...

    def take_answer_fault(self, kind: str) -> bool:
        """True (once) when a fault of ``kind`` is armed for this request's answer."""
        ...


Endpoint = Callable[[Exchange, Any], None]


def _require_object(body: Any) -> Dict[str, Any]:
    if not isinstance(body, dict):
        raise SimError(400, "The request body must be a JSON object", type="invalid_request")
    return body


# -- model lists -------------------------------------------------------------------------


def _v1_models(ex: Exchange, body: Any) -> None:
    engine = ex.engine
    models = [shapes.v1_model_entry(m, engine.instances_of(m.key)) for m in engine.models.values()]
    ex.send_json(200, {"models": models})


def _v0_models(ex: Exchange, body: Any) -> None:
    engine = ex.engine
    data = [shapes.v0_model_entry(m, engine.instances_of(m.key)) for m in engine.models.values()]
    ex.send_json(200, {"object": "list", "data": data})


def _v0_model(ex: Exchange, key: str) -> None:
    engine = ex.engine
    model = engine.models.get(key)
    if model is None:
        raise SimError(
            404, f'Model "{key}" not found', type="invalid_request", code="model_not_found"
        )
    ex.send_json(200, shapes.v0_model_entry(model, engine.instances_of(key)))


def _openai_models(ex: Exchange, body: Any) -> None:
    ex.send_json(200, shapes.openai_models(list(ex.engine.models.values())))


# -- load / unload -----------------------------------------------------------------------


def _check_keys(body: Dict[str, Any], allowed: FrozenSet[str]) -> None:
    unknown = sorted(k for k in body if k not in allowed)
    if unknown:
        names = ", ".join(f"'{k}'" for k in unknown)
        raise SimError(400, f"Unrecognized key(s) in object: {names}", code="unrecognized_keys")


def _positive_int(body: Dict[str, Any], name: str) -> Optional[int]:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SimError(400, f"'{name}' must be a positive integer", param=name)
    return int(value)


def _load(ex: Exchange, body: Any) -> None:
    body = _require_object(body)
    _check_keys(body, LOAD_KEYS | {"ttl"} if ex.settings.load_ttl else LOAD_KEYS)
    key = body.get("model")
    if not isinstance(key, str) or not key:
        raise SimError(400, '"model" is required', code="missing_required_parameter", param="model")
    context_length = _positive_int(body, "context_length")
    _positive_int(body, "ttl")
    options = {
        k: v for k, v in body.items() if k not in ("model", "context_length", "echo_load_config")
    }
    result = ex.engine.load(key, context_length, options)
    reply: Dict[str, Any] = {
        "type": result.model.type,
        "instance_id": result.instance_id,
        "load_time_seconds": round(result.seconds, 3),
        "status": "loaded",
    }
    if body.get("echo_load_config") is True:
        reply["load_config"] = {k: v for k, v in result.config.items() if k != "parallel"}
    ex.send_json(200, reply)


def _unload(ex: Exchange, body: Any) -> None:
    body = _require_object(body)
    _check_keys(body, frozenset({"instance_id"}))
    instance_id = body.get("instance_id")
    if not isinstance(instance_id, str) or not instance_id:
        raise SimError(
            400, '"instance_id" is required', code="missing_required_parameter", param="instance_id"
        )
    ex.engine.unload(instance_id)
    ex.send_json(200, {"instance_id": instance_id})


# -- inference ---------------------------------------------------------------------------


def _resolve(ex: Exchange, body: Dict[str, Any], want: str) -> _Instance:
    inst = ex.engine.resolve(
        body.get("model"),
        jit=ex.settings.api != "openai",
        lenient=ex.settings.lenient_model_names,
        ttl=_positive_int(body, "ttl"),
    )
    if inst.model.type != want:
        kind = "an embedding model" if want == "llm" else "not an embedding model"
        raise SimError(400, f'Model "{inst.id}" is {kind}', param="model")
    return inst


def _max_tokens(body: Dict[str, Any]) -> Optional[int]:
    value = body.get("max_tokens", body.get("max_completion_tokens"))
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None  # absent, null or -1: no limit


def _overflow_message(prompt_tokens: int, context: int) -> str:
    return (
        "The number of tokens to keep from the initial prompt is greater than the context "
        f"length (n_keep: {prompt_tokens}>= n_ctx: {context}). Try to load the model with a "
        "larger context length, or provide a shorter input."
    )


def _prompt(model: SimModel, body: Dict[str, Any], chat: bool) -> Tuple[str, str, int]:
    if chat:
        try:
            flat, user_text, tokens = chat_prompt_text(body.get("messages"), model.tokens)
        except ValueError as exc:
            raise SimError(400, str(exc), param="messages") from exc
        return flat, user_text, tokens + model.template_overhead_tokens
    prompt = body.get("prompt")
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        prompt = "\n".join(prompt)
    if not isinstance(prompt, str):
        raise SimError(400, "'prompt' must be a string", param="prompt")
    return prompt, prompt, model.tokens(prompt)


def _completion(ex: Exchange, body: Any, *, chat: bool, v0: bool) -> None:
    body = _require_object(body)
    schema = schema_asked(
        ex.settings.api, body, "/v1/chat/completions" if chat else "/v1/completions"
    )
    inst = _resolve(ex, body, "llm")
    model = inst.model
    cache_text, user_text, prompt_tokens = _prompt(model, body, chat)
    cut = continued_from(body.get("messages")) if chat else None  # continue a cut answer
    user_text, partial = cut or (user_text, "")
    stream = body.get("stream") is True
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    request_id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:20]
    engine = ex.engine
    with engine.slot(inst):
        context = inst.context_length
        truncated = prompt_tokens > context
        if truncated and not model.truncates:
            engine.note_sent_tokens(prompt_tokens)
            message = _overflow_message(prompt_tokens, context)
            if not stream:
                raise SimError(400, message, plain=True)
            engine.count_stream()
            sink = ex.open_stream()
            if ex.settings.overflow_stream == "empty":
                sink.finish([_chunk(chat, request_id, inst.id, "", "stop")], done=True)
            else:
                error = {"message": message, "type": "invalid_request_error"}
                sink.finish([{"error": error}], done=False)
            return
        if truncated:
            cache_text = cache_text[: len(cache_text) * context // prompt_tokens]
            prompt_tokens = context
        answer = answer_prompt(
            model, user_text, prompt_tokens, seed=engine.seed, truncated=truncated
        )
        prefill_s = engine.process_prompt(inst, cache_text, prompt_tokens)
        turn = tool_turn(model, body) if chat else None
        if turn is not None and turn.calls:
            answer_tool_calls(
                ex,
                inst,
                turn.calls,
                request_id,
                prompt_tokens,
                stream=stream,
                include_usage=include_usage,
            )
            return
        limit = _max_tokens(body)
        said = answer.words if turn is None else turn.words
        if schema is not None:  # a JSON answer conforming to the schema (or, faulted, not)
            schema = json_mode_schema(schema, user_text)  # JSON mode: the keys the prompt names
            said = tuple(schema_words(schema, broken=ex.take_answer_fault("schema_invalid")))
        words: List[str] = answer_pieces(said, partial)
        finish = "stop"
        if limit is not None and len(words) > limit:
            words, finish = words[:limit], "length"
        if stream:
            engine.count_stream()
            _stream_answer(ex, inst, words, finish, request_id, chat, include_usage, prompt_tokens)
            return
        generation_s = engine.generate(inst, len(words))
        reply = shapes.completion_body(
            chat=chat,
            request_id=request_id,
            model_id=inst.id,
            text="".join(words),
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(words),
        )
        if v0:
            reply.update(
                shapes.v0_extras(
                    model,
                    context_length=context,
                    prefill_s=prefill_s,
                    generation_s=generation_s,
                    finish_reason=finish,
                )
            )
        ex.send_json(200, reply)


def _chunk(
    chat: bool,
    request_id: str,
    model_id: str,
    text: str,
    finish: Optional[str],
    first: bool = False,
) -> Dict[str, Any]:
    if not chat:
        return shapes.text_chunk(request_id, model_id, text, finish)
    delta: Dict[str, Any] = {}
    if first:
        delta["role"] = "assistant"
    if text or first:
        delta["content"] = text
    return shapes.chat_chunk(request_id, model_id, delta, finish)


def _stream_answer(
    ex: Exchange,
    inst: _Instance,
    words: List[str],
    finish: str,
    request_id: str,
    chat: bool,
    include_usage: bool,
    prompt_tokens: int,
) -> None:
    sink = ex.open_stream()
    sent = 0
    for i, piece in enumerate(words):  # pieces, each with the space before it
        if not sink.content(_chunk(chat, request_id, inst.id, piece, None, first=i == 0)):
            return
        sent += 1
        ex.engine.generate(inst, 1)
    last = _chunk(chat, request_id, inst.id, "", finish)
    tail = [last]
    if include_usage:
        tail.append(shapes.usage_chunk(last, prompt_tokens, sent))
    sink.finish(tail, done=True)


def _chat(ex: Exchange, body: Any) -> None:
    _completion(ex, body, chat=True, v0=False)


def _chat_v0(ex: Exchange, body: Any) -> None:
    _completion(ex, body, chat=True, v0=True)


def _text(ex: Exchange, body: Any) -> None:
    _completion(ex, body, chat=False, v0=False)


def _text_v0(ex: Exchange, body: Any) -> None:
    _completion(ex, body, chat=False, v0=True)


def _embeddings(ex: Exchange, body: Any) -> None:
    body = _require_object(body)
    inst = _resolve(ex, body, "embedding")
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise SimError(400, "'input' must be a string or an array of strings", param="input")
    tokens = sum(inst.model.tokens(t) for t in texts)
    with ex.engine.slot(inst):
        ex.engine.process_prompt(inst, "", tokens)
    vectors = [embedding_vector(inst.model.key, t) for t in texts]
    ex.send_json(200, shapes.embeddings_body(inst.id, vectors, tokens))


def _greeting(ex: Exchange, body: Any) -> None:
    ex.send_json(200, {"lmstudio": True})


_OPENAI_ROUTES: Dict[Tuple[str, str], Endpoint] = {
    ("GET", "/v1/models"): _openai_models,
    ("POST", "/v1/chat/completions"): _chat,
    ("POST", "/v1/completions"): _text,
    ("POST", "/v1/embeddings"): _embeddings,
}
_V0_ROUTES: Dict[Tuple[str, str], Endpoint] = {
    ("GET", "/lmstudio-greeting"): _greeting,
    ("GET", "/api/v0/models"): _v0_models,
    ("POST", "/api/v0/chat/completions"): _chat_v0,
    ("POST", "/api/v0/completions"): _text_v0,
    ("POST", "/api/v0/embeddings"): _embeddings,
}
_V1_ROUTES: Dict[Tuple[str, str], Endpoint] = {
    ("GET", "/api/v1/models"): _v1_models,
    ("POST", "/api/v1/models/load"): _load,
    ("POST", "/api/v1/models/unload"): _unload,
    ("POST", "/api/v1/chat"): native_chat,
}
_V0_MODEL_PREFIX = "/api/v0/models/"


def route(api: str, method: str, path: str) -> Optional[Endpoint]:
    """Return the endpoint serving ``method path`` in API mode ``api``, or None."""
    routes = dict(_OPENAI_ROUTES)
    if api in ("v0", "v1"):
        routes.update(_V0_ROUTES)
    if api == "v1":
        routes.update(_V1_ROUTES)
    found = routes.get((method, path))
    if found is None and api == "v1":
        found = download_route(method, path)
    if found is None and api != "openai" and method == "GET" and path.startswith(_V0_MODEL_PREFIX):
        key = unquote(path[len(_V0_MODEL_PREFIX) :])
        if key:
            return lambda ex, body: _v0_model(ex, key)
    return found
