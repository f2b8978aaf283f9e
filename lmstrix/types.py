"""Frozen dataclasses for the objects that cross the wire.

Each has ``from_dict`` (tolerant: unknown fields are kept in ``raw``, missing ones
become ``None``) and ``to_dict``. They describe what the server said; they hold no
connection and no token. Replies are decoded here and nowhere else:
:meth:`Completion.from_wire` for a whole answer, :meth:`Chunk.from_wire` for one
streamed event.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, FrozenSet, Mapping, Optional, Tuple

from ._coerce import float_or_none as _float_or_none
from ._coerce import int_or_none as _int_or_none
from ._coerce import str_or_none as _str_or_none
from ._toolcall import ToolCall, message_tool_calls, tool_calls_of

__all__ = [
    "Chunk",
    "Completion",
    "LoadedInstance",
    "ModelInfo",
    "Stats",
    "ToolCall",
    "Usage",
]


@dataclass(frozen=True)
class Usage:
    """Token counts reported by the server (``usage``); fields are ``None`` when absent."""

    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    total_tokens: Optional[int] = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        """Build from an OpenAI ``usage`` object or an ``/api/v1`` ``stats`` object."""
        prompt = _int_or_none(data.get("prompt_tokens", data.get("input_tokens")))
        completion = _int_or_none(data.get("completion_tokens", data.get("total_output_tokens")))
        total = _int_or_none(data.get("total_tokens"))
        if total is None and prompt is not None and completion is not None:
            total = prompt + completion
        return cls(prompt, completion, total)

    def to_dict(self) -> Dict[str, Any]:
        """Return the OpenAI-shaped dictionary."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Stats:
    """Timing figures for one answer: from the server when it sends them, else measured.

    ``time_to_first_token_s`` and ``tokens_per_second`` come from LM Studio's ``stats``
    when present; otherwise the client fills them from its own clock.
    """

    time_to_first_token_s: Optional[float] = None
    tokens_per_second: Optional[float] = None
    generation_time_s: Optional[float] = None
    total_time_s: Optional[float] = None
    stop_reason: Optional[str] = None
    source: str = "server"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stats:
        """Build from LM Studio's ``stats`` (v0 or v1 names) or from :meth:`to_dict`."""
        ttft = data.get("time_to_first_token_s", data.get("time_to_first_token"))
        if ttft is None:
            ttft = data.get("time_to_first_token_seconds")
        return cls(
            time_to_first_token_s=_float_or_none(ttft),
            tokens_per_second=_float_or_none(data.get("tokens_per_second")),
            generation_time_s=_float_or_none(
                data.get("generation_time_s", data.get("generation_time"))
            ),
            total_time_s=_float_or_none(data.get("total_time_s")),
            stop_reason=_str_or_none(data.get("stop_reason")),
            source=str(data.get("source", "server")),
        )

    @classmethod
    def from_wire(cls, raw: Any, elapsed_s: float, usage: Usage) -> Stats:
        """The server's ``stats`` when it sent them (``total_time_s`` filled in from
        ``elapsed_s``), else figures measured on this side from ``usage``."""
        if isinstance(raw, dict) and raw:  # a dict: decoded JSON (and no slow ABC check)
            stats = cls.from_dict(raw)
            if stats.total_time_s is None:
                return replace(stats, total_time_s=elapsed_s, source="server")
            return stats
        tokens = usage.completion_tokens
        rate = tokens / elapsed_s if tokens and elapsed_s > 0 else None
        return cls(total_time_s=elapsed_s, tokens_per_second=rate, source="client")

    def to_dict(self) -> Dict[str, Any]:
        """Return a plain dictionary with unit-suffixed keys."""
        return {
            "time_to_first_token_s": self.time_to_first_token_s,
            "tokens_per_second": self.tokens_per_second,
            "generation_time_s": self.generation_time_s,
            "total_time_s": self.total_time_s,
            "stop_reason": self.stop_reason,
            "source": self.source,
        }


@dataclass(frozen=True)
class LoadedInstance:
    """A model instance loaded in memory.

    ``context_length`` is what the server applied; ``requested_context_length`` is
    what was asked for (``None`` when the instance was found, not loaded by us).
    """

    id: str
    model_key: str
    context_length: Optional[int] = None
    requested_context_length: Optional[int] = None
    parallel: Optional[int] = None
    load_time_s: Optional[float] = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def auto_fitted(self) -> bool:
        """True when the server applied another context length than the one requested."""
        return (
            self.requested_context_length is not None
            and self.context_length is not None
            and self.context_length != self.requested_context_length
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, model_key: str = "") -> LoadedInstance:
        """Build from a ``loaded_instances[]`` entry or from :meth:`to_dict`."""
        config = data.get("config")
        config = config if isinstance(config, Mapping) else {}
        ctx = data.get("context_length", config.get("context_length"))
        return cls(
            id=str(data.get("id", data.get("instance_id", ""))),
            model_key=str(data.get("model_key", model_key)),
            context_length=_int_or_none(ctx),
            requested_context_length=_int_or_none(data.get("requested_context_length")),
            parallel=_int_or_none(data.get("parallel", config.get("parallel"))),
            load_time_s=_float_or_none(data.get("load_time_s")),
            raw=dict(data),
        )

    @classmethod
    def from_load_answer(
        cls,
        answer: Mapping[str, Any],
        model_key: str,
        requested: Optional[int],
        *,
        elapsed_s: float,
    ) -> LoadedInstance:
        """Build from the answer of ``POST /api/v1/models/load`` (``echo_load_config``).

        ``context_length`` is ``None`` when the answer has no ``load_config``.
        """
        config = answer.get("load_config")
        config = config if isinstance(config, Mapping) else {}
        applied = config.get("context_length")
        load_time = answer.get("load_time_seconds")
        return cls(
            id=str(answer.get("instance_id") or model_key),
            model_key=model_key,
            context_length=applied if isinstance(applied, int) else None,
            requested_context_length=requested,
            parallel=_int_or_none(config.get("parallel")),
            load_time_s=float(load_time) if isinstance(load_time, (int, float)) else elapsed_s,
            raw=answer,
        )

    def to_dict(self) -> Dict[str, Any]:
        """Return a plain dictionary (``raw`` left out)."""
        return {
            "id": self.id,
            "model_key": self.model_key,
            "context_length": self.context_length,
            "requested_context_length": self.requested_context_length,
            "parallel": self.parallel,
            "load_time_s": self.load_time_s,
        }


@dataclass(frozen=True)
class ModelInfo:
    """A model the server knows (downloaded, and possibly loaded).

    Fields the server did not send are ``None``; OpenAI-only servers give little more
    than ``key``. ``type`` is normalised to ``llm``, ``vlm`` or ``embedding``.
    """

    key: str
    display_name: Optional[str] = None
    type: Optional[str] = None
    publisher: Optional[str] = None
    architecture: Optional[str] = None
    quantization: Optional[str] = None
    format: Optional[str] = None
    size_bytes: Optional[int] = None
    params_string: Optional[str] = None
    max_context_length: Optional[int] = None
    loaded_instances: Tuple[LoadedInstance, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_loaded(self) -> bool:
        """True when at least one instance is loaded."""
        return bool(self.loaded_instances)

    @property
    def capabilities(self) -> FrozenSet[str]:
        """What the server says the model can do: ``vision``, ``tool_use``, ``reasoning``.

        Read from ``/api/v1`` (an object) or ``/api/v0`` (a list) rows and the ``vlm``
        type; empty where the server does not say (OpenAI-only servers).
        """
        found = set()
        raw = self.raw.get("capabilities")
        if isinstance(raw, Mapping):
            if raw.get("vision"):
                found.add("vision")
            if raw.get("trained_for_tool_use"):
                found.add("tool_use")
            if raw.get("reasoning"):
                found.add("reasoning")
        elif isinstance(raw, list):
            found.update(str(c) for c in raw)
        if self.type == "vlm":
            found.add("vision")
        return frozenset(found)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        """Build from an ``/api/v1``, ``/api/v0`` or ``/v1`` model entry, or :meth:`to_dict`."""
        key = str(data.get("key") or data.get("id") or "")
        quant = data.get("quantization")
        if isinstance(quant, Mapping):
            quant = quant.get("name")
        mtype = _str_or_none(data.get("type"))
        if mtype == "embeddings":
            mtype = "embedding"
        instances = _instances_from(data, key)
        return cls(
            key=key,
            display_name=_str_or_none(data.get("display_name")),
            type=mtype,
            publisher=_str_or_none(data.get("publisher")),
            architecture=_str_or_none(data.get("architecture", data.get("arch"))),
            quantization=_str_or_none(quant),
            format=_str_or_none(data.get("format", data.get("compatibility_type"))),
            size_bytes=_int_or_none(data.get("size_bytes")),
            params_string=_str_or_none(data.get("params_string")),
            max_context_length=_int_or_none(data.get("max_context_length")),
            loaded_instances=instances,
            raw=dict(data),
        )

    def to_dict(self) -> Dict[str, Any]:
        """Return a plain dictionary (``raw`` left out)."""
        return {
            "key": self.key,
            "display_name": self.display_name,
            "type": self.type,
            "publisher": self.publisher,
            "architecture": self.architecture,
            "quantization": self.quantization,
            "format": self.format,
            "size_bytes": self.size_bytes,
            "params_string": self.params_string,
            "max_context_length": self.max_context_length,
            "loaded_instances": [inst.to_dict() for inst in self.loaded_instances],
        }


def _text_of(choice: Mapping[str, Any], part: Optional[str]) -> Tuple[Any, Any]:
    """``(text, reasoning)`` of a choice: from its ``part`` (``message`` or ``delta``) for
    a chat answer, else its ``text`` (a plain completion, which has no reasoning)."""
    if part is None:
        return choice.get("text") or "", ""
    found = choice.get(part)
    found = found if isinstance(found, dict) else {}
    reasoning = found.get("reasoning_content") or found.get("reasoning") or ""
    return found.get("content") or "", reasoning


def _instances_from(data: Mapping[str, Any], key: str) -> Tuple[LoadedInstance, ...]:
    entries = data.get("loaded_instances")
    if isinstance(entries, list):
        return tuple(
            LoadedInstance.from_dict(e, model_key=key) for e in entries if isinstance(e, Mapping)
        )
    if data.get("state") == "loaded":  # /api/v0 rows describe one instance inline
        ctx = _int_or_none(data.get("loaded_context_length"))
        return (LoadedInstance(id=key, model_key=key, context_length=ctx),)
    return ()


@dataclass(frozen=True)
class Chunk:
    """One piece of a streamed answer: new ``text`` and, on the last piece, ``finish_reason``.

    ``tool_calls`` holds the tool-call fragments of this piece (see :class:`ToolCall`).
    """

    text: str = ""
    finish_reason: Optional[str] = None
    reasoning: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    tool_calls: Tuple[ToolCall, ...] = ()

    @classmethod
    def from_wire(cls, payload: Mapping[str, Any], *, chat: bool) -> Chunk:
        """One streamed event of ``/v1/chat/completions`` (``chat``) or ``/v1/completions``.

        An event without choices (the usage event) gives an empty chunk.
        """
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return cls("", None, "", payload)
        choice: Mapping[str, Any] = choices[0]
        text, reasoning = _text_of(choice, "delta" if chat else None)
        finish = choice.get("finish_reason")
        delta = choice.get("delta") if chat else None
        # Most chunks carry no tool call: a key test before any call.
        calls = tool_calls_of(delta) if type(delta) is dict and "tool_calls" in delta else ()
        # One call per streamed token: filled in directly, skipping the frozen
        # dataclass __init__ (four object.__setattr__ calls).
        chunk = object.__new__(cls)
        chunk.__dict__.update(
            text=text if type(text) is str else str(text),
            finish_reason=str(finish) if finish else None,
            reasoning=reasoning if type(reasoning) is str else str(reasoning),
            raw=payload,
            tool_calls=calls,
        )
        return chunk


@dataclass(frozen=True)
class Completion:
    """A whole answer: ``text``, ``finish_reason``, ``usage``, ``stats`` and the ``raw`` body.

    ``parsed`` is the JSON value of the answer, validated against the schema, when the
    request asked for structured output (``schema=`` or ``response_format``; see
    docs/user-guide/structured-output.md), else ``None``.

    ``model`` is the model the server says answered, which may differ from the one
    asked for (see :class:`lmstrix.Client` ``strict_model``). ``continued`` counts the
    requests that continued a stream cut mid-answer (``stream_chat(...,
    continue_on_cut=True)``); 0 for an answer received in one piece.
    """

    text: str
    finish_reason: Optional[str] = None
    model: Optional[str] = None
    usage: Usage = field(default_factory=Usage)
    stats: Stats = field(default_factory=Stats)
    reasoning: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    continued: int = 0
    tool_calls: Tuple[ToolCall, ...] = ()
    parsed: Any = None

    @classmethod
    def from_wire(cls, answer: Mapping[str, Any], *, chat: bool, elapsed_s: float) -> Completion:
        """A whole (non-streamed) answer of ``/v1/chat/completions`` or ``/v1/completions``."""
        choices = answer.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else {}
        choice = choice if isinstance(choice, dict) else {}
        text, reasoning = _text_of(choice, "message" if chat else None)
        usage_raw = answer.get("usage")
        usage = Usage.from_dict(usage_raw) if isinstance(usage_raw, dict) else Usage()
        model = answer.get("model")
        finish = choice.get("finish_reason")
        return cls(
            text=str(text),
            finish_reason=str(finish) if finish else None,
            model=model if isinstance(model, str) and model else None,
            usage=usage,
            stats=Stats.from_wire(answer.get("stats"), elapsed_s, usage),
            reasoning=str(reasoning),
            raw=answer,
            tool_calls=message_tool_calls(choice) if chat else (),
        )

    @property
    def is_empty(self) -> bool:
        """True for an answer with no text, no reasoning and no tool call: nothing at all."""
        return not (
            self.text or self.reasoning or self.tool_calls or self.finish_reason == "tool_calls"
        )

    def to_dict(self) -> Dict[str, Any]:
        """Return a plain dictionary (``raw`` left out)."""
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "model": self.model,
            "usage": self.usage.to_dict(),
            "stats": self.stats.to_dict(),
            "reasoning": self.reasoning,
            "continued": self.continued,
            "tool_calls": [call.to_dict() for call in self.tool_calls],
            "parsed": self.parsed,
        }
