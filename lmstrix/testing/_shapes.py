"""JSON shapes of the simulator's replies, as LM Studio sends them (see the API reference)."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence

from ._engine import InstanceInfo, SimError
from ._models import SimModel

__all__ = [
    "chat_chunk",
    "completion_body",
    "embeddings_body",
    "error_body",
    "openai_models",
    "text_chunk",
    "unexpected_endpoint",
    "usage",
    "usage_chunk",
    "v0_extras",
    "v0_model_entry",
    "v1_model_entry",
]

_OPENAI_TYPES = {"invalid_request": "invalid_request_error", "internal_error": "server_error"}


def error_body(err: SimError, *, family: str) -> Dict[str, Any]:
    """Render ``err`` for an endpoint ``family``: ``"v1"`` (native) or ``"openai"``."""
    if err.plain:
        return {"error": err.message}
    if family == "openai":
        return {
            "error": {
                "message": err.message,
                "type": _OPENAI_TYPES.get(err.type, err.type),
                "param": err.param,
                "code": err.code,
            }
        }
    inner: Dict[str, Any] = {"type": err.type, "message": err.message}
    if err.code is not None:
        inner["code"] = err.code
    if err.param is not None:
        inner["param"] = err.param
    return {"error": inner}


def unexpected_endpoint(method: str, path: str) -> Dict[str, Any]:
    """LM Studio's HTTP-200 reply to an unknown path or method."""
    return {"error": f"Unexpected endpoint or method. ({method} {path})"}


def v1_model_entry(model: SimModel, instances: Sequence[InstanceInfo]) -> Dict[str, Any]:
    """One ``/api/v1/models`` entry (reference section 4.1)."""
    loaded = [{"id": inst.id, "config": dict(inst.config)} for inst in instances]
    entry: Dict[str, Any] = {
        "type": model.type,
        "publisher": model.publisher,
        "key": model.key,
        "display_name": model.display_name,
    }
    if model.type == "llm":
        entry["architecture"] = model.architecture
    entry.update(
        {
            "quantization": {"name": model.quantization, "bits_per_weight": model.bits_per_weight},
            "size_bytes": model.size_bytes,
            "params_string": model.params_string,
            "loaded_instances": loaded,
            "max_context_length": model.declared_context,
            "format": model.format,
        }
    )
    if model.type == "llm":
        entry["capabilities"] = {
            "vision": model.vision,
            "trained_for_tool_use": model.trained_for_tool_use,
        }
        entry["description"] = model.description
    return entry


def v0_model_entry(model: SimModel, instances: Sequence[InstanceInfo]) -> Dict[str, Any]:
    """One ``/api/v0/models`` entry (reference section 3.1; ``embeddings`` is plural)."""
    entry: Dict[str, Any] = {
        "id": model.key,
        "object": "model",
        "type": ("vlm" if model.vision else "llm") if model.type == "llm" else "embeddings",
        "publisher": model.publisher,
        "arch": model.architecture,
        "compatibility_type": model.format,
        "quantization": model.quantization,
        "state": "loaded" if instances else "not-loaded",
        "max_context_length": model.declared_context,
    }
    if instances:
        entry["loaded_context_length"] = instances[0].context_length
    entry["capabilities"] = ["tool_use"] if model.trained_for_tool_use else []
    return entry


def openai_models(models: Sequence[SimModel]) -> Dict[str, Any]:
    """The ``/v1/models`` list."""
    return {
        "object": "list",
        "data": [
            {"id": m.key, "object": "model", "owned_by": "organization_owner"} for m in models
        ],
    }


def usage(prompt_tokens: int, completion_tokens: int) -> Dict[str, Any]:
    """An OpenAI ``usage`` object."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_body(
    *,
    chat: bool,
    request_id: str,
    model_id: str,
    text: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> Dict[str, Any]:
    """A non-streaming chat or text completion."""
    body: Dict[str, Any] = {
        "id": request_id,
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model_id,
    }
    if chat:
        message = {"role": "assistant", "content": text, "reasoning_content": "", "tool_calls": []}
        choice: Dict[str, Any] = {"index": 0, "message": message}
    else:
        choice = {"index": 0, "text": text}
    choice.update({"logprobs": None, "finish_reason": finish_reason})
    body["choices"] = [choice]
    body["usage"] = usage(prompt_tokens, completion_tokens)
    if chat:
        body["stats"] = {}
        body["system_fingerprint"] = model_id
    return body


def chat_chunk(
    request_id: str,
    model_id: str,
    delta: Dict[str, Any],
    finish_reason: Optional[str] = None,
) -> Dict[str, Any]:
    """One ``chat.completion.chunk`` event."""
    return {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model_id,
        "system_fingerprint": model_id,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def text_chunk(
    request_id: str, model_id: str, text: str, finish_reason: Optional[str] = None
) -> Dict[str, Any]:
    """One streamed ``text_completion`` event."""
    return {
        "id": request_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk(
    chunk: Dict[str, Any], prompt_tokens: int, completion_tokens: int
) -> Dict[str, Any]:
    """The extra ``include_usage`` chunk: ``choices`` empty, ``usage`` set."""
    tail = dict(chunk)
    tail["choices"] = []
    tail["usage"] = usage(prompt_tokens, completion_tokens)
    return tail


def v0_extras(
    model: SimModel,
    *,
    context_length: int,
    prefill_s: float,
    generation_s: float,
    finish_reason: str,
) -> Dict[str, Any]:
    """The ``stats``, ``model_info`` and ``runtime`` blocks of ``/api/v0`` completions."""
    return {
        "stats": {
            "tokens_per_second": round(1.0 / model.decode_s_per_token, 3)
            if model.decode_s_per_token > 0
            else 0.0,
            "time_to_first_token": round(prefill_s, 6),
            "generation_time": round(generation_s, 6),
            "stop_reason": "maxPredictedTokensReached" if finish_reason == "length" else "eosFound",
        },
        "model_info": {
            "arch": model.architecture,
            "quant": model.quantization,
            "format": model.format,
            "context_length": context_length,
        },
        "runtime": {
            "name": "lmstrix-simulator",
            "version": "1.0.0",
            "supported_formats": [model.format],
        },
    }


def embeddings_body(
    model_id: str, vectors: List[List[float]], prompt_tokens: int
) -> Dict[str, Any]:
    """An ``/v1/embeddings`` reply."""
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "embedding": vec, "index": i} for i, vec in enumerate(vectors)
        ],
        "model": model_id,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
