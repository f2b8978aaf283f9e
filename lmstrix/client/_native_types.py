"""What LM Studio's native chat (``POST /api/v1/chat``, LM Studio 0.4+) answers.

Frozen dataclasses, decoded tolerantly like the other wire types: a missing field is
``None`` (or empty), an output item of a type this version does not know is kept as an
:class:`UnknownItem` rather than dropped, and every object keeps its ``raw`` JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from .._coerce import float_or_none, int_or_none, str_or_none
from ..types import Completion, Stats, Usage

__all__ = [
    "InvalidToolCallItem",
    "MessageItem",
    "NativeChatResult",
    "NativeEvent",
    "NativeStats",
    "OutputItem",
    "ReasoningItem",
    "ToolCallItem",
    "UnknownItem",
    "output_item",
]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else json.dumps(value))


@dataclass(frozen=True)
class _TextItem:
    content: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    type: str = ""


@dataclass(frozen=True)
class MessageItem(_TextItem):
    """Answer text (``type: "message"``): ``content``."""

    type: str = "message"


@dataclass(frozen=True)
class ReasoningItem(_TextItem):
    """The model's reasoning before its answer (``type: "reasoning"``): ``content``."""

    type: str = "reasoning"


@dataclass(frozen=True)
class ToolCallItem:
    """A tool the server ran for the model (an MCP or plugin integration): ``tool``,
    its ``arguments``, its ``output`` and the ``provider_info`` saying who provided it."""

    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    output: Optional[str] = None
    provider_info: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    type: str = "tool_call"


@dataclass(frozen=True)
class InvalidToolCallItem:
    """A tool call the server could not run: ``reason`` and ``metadata`` say why."""

    reason: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    type: str = "invalid_tool_call"


@dataclass(frozen=True)
class UnknownItem:
    """An output item of a type lmstrix does not know yet; ``raw`` holds all of it."""

    type: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


OutputItem = Union[MessageItem, ReasoningItem, ToolCallItem, InvalidToolCallItem, UnknownItem]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def output_item(data: Mapping[str, Any]) -> OutputItem:
    """One ``output`` entry as its typed item (:class:`UnknownItem` for a new type)."""
    kind = data.get("type")
    raw = dict(data)
    if kind == "message":
        return MessageItem(_text(data.get("content")), raw)
    if kind == "reasoning":
        return ReasoningItem(_text(data.get("content")), raw)
    if kind == "tool_call":
        arguments = data.get("arguments")
        if isinstance(arguments, str):  # some builds send the arguments as JSON text
            try:
                arguments = json.loads(arguments)
            except ValueError:
                arguments = {"_text": arguments}
        output = data.get("output")
        return ToolCallItem(
            _text(data.get("tool")),
            _mapping(arguments),
            None if output is None else _text(output),
            _mapping(data.get("provider_info")),
            raw,
        )
    if kind == "invalid_tool_call":
        return InvalidToolCallItem(_text(data.get("reason")), _mapping(data.get("metadata")), raw)
    return UnknownItem(str(kind), raw)


@dataclass(frozen=True)
class NativeStats:
    """The server's figures for one native answer; ``None`` where it did not say.

    ``model_load_time_seconds`` is only there when the request loaded the model.
    """

    input_tokens: Optional[int] = None
    total_output_tokens: Optional[int] = None
    reasoning_output_tokens: Optional[int] = None
    tokens_per_second: Optional[float] = None
    time_to_first_token_seconds: Optional[float] = None
    model_load_time_seconds: Optional[float] = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NativeStats:
        """Build from the answer's ``stats`` object."""
        return cls(
            int_or_none(data.get("input_tokens")),
            int_or_none(data.get("total_output_tokens")),
            int_or_none(data.get("reasoning_output_tokens")),
            float_or_none(data.get("tokens_per_second")),
            float_or_none(data.get("time_to_first_token_seconds")),
            float_or_none(data.get("model_load_time_seconds")),
        )

    def to_dict(self) -> Dict[str, Any]:
        """The figures under their wire names (absent ones as ``None``)."""
        return {
            "input_tokens": self.input_tokens,
            "total_output_tokens": self.total_output_tokens,
            "reasoning_output_tokens": self.reasoning_output_tokens,
            "tokens_per_second": self.tokens_per_second,
            "time_to_first_token_seconds": self.time_to_first_token_seconds,
            "model_load_time_seconds": self.model_load_time_seconds,
        }


@dataclass(frozen=True)
class NativeChatResult:
    """One answer of :meth:`lmstrix.Client.respond` (or the end of a native stream).

    ``output`` holds the typed items in the server's order; ``text`` joins the message
    items. ``response_id`` is there when the server stored the answer (``store``, the
    default), to continue the conversation with ``previous_response_id``.
    """

    output: Tuple[OutputItem, ...] = ()
    stats: NativeStats = field(default_factory=NativeStats)
    response_id: Optional[str] = None
    model_instance_id: Optional[str] = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NativeChatResult:
        """Build from the JSON answer (or a ``chat.end`` event's ``result``)."""
        items = data.get("output")
        stats = data.get("stats")
        return cls(
            tuple(output_item(i) for i in items if isinstance(i, dict))
            if isinstance(items, list)
            else (),
            NativeStats.from_dict(stats) if isinstance(stats, dict) else NativeStats(),
            str_or_none(data.get("response_id")),
            str_or_none(data.get("model_instance_id")),
            data,
        )

    @property
    def text(self) -> str:
        """The answer: the message items' content, joined."""
        return "".join(i.content for i in self.output if isinstance(i, MessageItem))

    @property
    def reasoning(self) -> str:
        """The reasoning items' content, joined (empty for models that do not reason)."""
        return "".join(i.content for i in self.output if isinstance(i, ReasoningItem))

    @property
    def usage(self) -> Usage:
        """The token counts as a :class:`~lmstrix.Usage` (input and output tokens)."""
        prompt, output = self.stats.input_tokens, self.stats.total_output_tokens
        total = prompt + output if prompt is not None and output is not None else None
        return Usage(prompt, output, total)

    def to_completion(self) -> Completion:
        """The same answer as a :class:`~lmstrix.Completion` (what observers are given)."""
        stats = Stats(
            time_to_first_token_s=self.stats.time_to_first_token_seconds,
            tokens_per_second=self.stats.tokens_per_second,
            source="server",
        )
        return Completion(
            self.text, None, self.model_instance_id, self.usage, stats, self.reasoning, self.raw
        )

    def to_dict(self) -> Dict[str, Any]:
        """A plain dictionary: the text, the items as the server sent them, stats, ids."""
        return {
            "text": self.text,
            "output": [dict(i.raw) for i in self.output],
            "stats": self.stats.to_dict(),
            "response_id": self.response_id,
            "model_instance_id": self.model_instance_id,
        }


@dataclass(frozen=True)
class NativeEvent:
    """One named event of a native stream: ``type`` (``chat.start``, ``message.delta``,
    ``model_load.progress``, ``error``, ``chat.end``...) and its ``data`` as sent."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def content(self) -> str:
        """The new text of a ``message.delta`` or ``reasoning.delta`` (else empty)."""
        return _text(self.data.get("content")) if self.type.endswith(".delta") else ""

    @property
    def progress(self) -> Optional[float]:
        """The fraction (0 to 1) of a ``*.progress`` event, else ``None``."""
        return float_or_none(self.data.get("progress"))

    @property
    def result(self) -> Optional[NativeChatResult]:
        """The whole answer carried by ``chat.end``, else ``None``."""
        found = self.data.get("result")
        return NativeChatResult.from_dict(found) if isinstance(found, dict) else None

    @property
    def error(self) -> Optional[Mapping[str, Any]]:
        """The error object of an ``error`` event (``type``, ``message``...), else ``None``."""
        found = self.data.get("error")
        return found if isinstance(found, dict) else None
