"""`ToolCall`: a function call the model asks for, as the wire carries it.

Kept beside :mod:`lmstrix.types` (which re-exports it) so that module stays small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

__all__ = ["ToolCall", "message_tool_calls", "tool_calls_of"]


@dataclass(frozen=True)
class ToolCall:
    """A function the model asks to call: ``name`` with ``arguments`` (a JSON text).

    In a :class:`Completion` each call is whole. In a :class:`Chunk` it is one streamed
    fragment: ``id`` and ``name`` come on the first piece of a call, later pieces add
    text to ``arguments``; fragments of one call share an ``index``.
    """

    id: str
    name: str
    arguments: str = ""
    index: int = 0
    type: str = "function"

    def parsed_arguments(self) -> Dict[str, Any]:
        """The arguments as a dictionary.

        Raises:
            ToolCallError: the arguments are not JSON, or not a JSON object.
        """
        from .errors import ToolCallError

        text = self.arguments.strip() or "{}"
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ToolCallError(
                f"the arguments of tool call {self.name!r} are not JSON ({exc}): "
                f"{self.arguments[:200]!r}",
                call=self,
            ) from exc
        if not isinstance(value, dict):
            raise ToolCallError(
                f"the arguments of tool call {self.name!r} are not a JSON object: "
                f"{self.arguments[:200]!r}",
                call=self,
            )
        return value

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], position: int = 0) -> ToolCall:
        """Build from an OpenAI ``tool_calls[]`` entry (whole, or a streamed fragment)."""
        function = data.get("function")
        function = function if isinstance(function, Mapping) else {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):  # some servers send the object itself
            arguments = "" if arguments is None else json.dumps(arguments)
        index = data.get("index")
        return cls(
            id=str(data.get("id") or ""),
            name=str(function.get("name") or ""),
            arguments=arguments,
            index=index if isinstance(index, int) and not isinstance(index, bool) else position,
            type=str(data.get("type") or "function"),
        )

    def to_dict(self) -> Dict[str, Any]:
        """The OpenAI wire shape, as an assistant message's ``tool_calls[]`` holds it."""
        return {
            "id": self.id,
            "type": self.type,
            "function": {"name": self.name, "arguments": self.arguments},
        }


def message_tool_calls(choice: Mapping[str, Any]) -> Tuple[ToolCall, ...]:
    """The ``tool_calls`` of a whole answer's choice (empty when there are none)."""
    message = choice.get("message")
    return tool_calls_of(message) if isinstance(message, dict) else ()


def tool_calls_of(found: Mapping[str, Any]) -> Tuple[ToolCall, ...]:
    """The ``tool_calls`` of a message or delta (empty when there are none)."""
    calls = found.get("tool_calls")
    if not calls or not isinstance(calls, list):
        return ()
    return tuple(
        ToolCall.from_dict(call, position)
        for position, call in enumerate(calls)
        if isinstance(call, Mapping)
    )
