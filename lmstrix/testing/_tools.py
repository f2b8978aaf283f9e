"""Simulated tool calls: which tools a model calls, turn by turn, and how they are sent.

A chat request with ``tools`` (and a ``tool_choice`` other than ``"none"``) is answered
by the model's :class:`ToolScript` when it has one, else by the default behaviour:

- the turn is the number of assistant messages already in the conversation; the
  script's entry for that turn is either tool calls (answered with
  ``finish_reason: "tool_calls"``) or text (sent as plain content, as LM Studio does with
  tool-call text it cannot parse);
- past the script's end (or with no script, once results are there), a conversation
  that ends with ``tool`` messages is answered with a text quoting each result:
  ``Tool results: NAME: RESULT; NAME: RESULT``;
- with no script, a conversation ending with a user message calls the tool named by
  ``tool_choice``, else the first tool, with arguments made from its JSON schema
  (numbers and strings take the user's message's numbers and quoted texts in order, see
  ``_prompted.py``; then numbers are 1 or 1.5, strings the message's last word).

Streamed tool calls come as ``delta.tool_calls`` fragments: the first piece of each call
has its ``id``, ``type`` and name with empty arguments, later pieces carry the arguments
a few characters at a time.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _shapes as shapes
from ._prompted import PromptValues, prompt_values

if TYPE_CHECKING:
    from ._engine import _Instance
    from ._models import SimModel
    from ._routes import Exchange

__all__ = ["SimToolCall", "ToolScript", "ToolTurn", "answer_tool_calls", "tool_turn"]

ARGUMENT_PIECE_CHARS = 8
"""Streamed arguments are cut into pieces of this many characters."""


@dataclass(frozen=True)
class SimToolCall:
    """One scripted call: the tool's ``name`` and its ``arguments`` exactly as sent (a JSON
    text; a mapping is encoded; any other text is sent as it is, to test bad arguments)."""

    name: str
    arguments: str = "{}"

    @classmethod
    def of(cls, item: Any) -> SimToolCall:
        """From a :class:`SimToolCall` or a ``(name, arguments)`` pair."""
        if isinstance(item, SimToolCall):
            return item
        name, arguments = item
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        return cls(str(name), arguments)


Step = Union[str, Sequence[Any]]


@dataclass(frozen=True)
class ToolScript:
    """What a simulated model does at each turn of a conversation that offers tools.

    Each step is a list of calls (:class:`SimToolCall` or ``(name, arguments)`` pairs,
    several for parallel calls in one turn) or a string (plain text, for tool-call text
    the server could not parse). Turn ``n`` (the ``n``-th assistant message of the
    conversation, from 0) plays step ``n``; past the last step the model answers with
    the tool results it was sent.

    >>> ToolScript([[("add", {"a": 1, "b": 2})], "done"]).steps[0][0].arguments
    '{"a": 1, "b": 2}'
    """

    steps: Tuple[Union[str, Tuple[SimToolCall, ...]], ...] = ()

    def __init__(self, steps: Sequence[Step] = ()) -> None:
        made: List[Union[str, Tuple[SimToolCall, ...]]] = []
        for step in steps:
            if isinstance(step, str):
                made.append(step)
            else:
                made.append(tuple(SimToolCall.of(item) for item in step))
        object.__setattr__(self, "steps", tuple(made))


@dataclass(frozen=True)
class ToolTurn:
    """How the model answers this request: ``calls`` to make, or ``words`` of text."""

    calls: Tuple[SimToolCall, ...] = ()
    words: Tuple[str, ...] = ()


def tool_turn(model: SimModel, body: Mapping[str, Any]) -> Optional[ToolTurn]:
    """This request's tool turn, or ``None`` when tools play no part (answer as usual)."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools or body.get("tool_choice") == "none":
        return None
    messages = body.get("messages")
    messages = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
    script: Optional[ToolScript] = getattr(model, "tool_script", None)
    if script is not None:
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        if turn < len(script.steps):
            step = script.steps[turn]
            if isinstance(step, str):
                return ToolTurn(words=tuple(step.split()))
            return ToolTurn(calls=step)
    results = _results(messages)
    if results:
        quoted = "; ".join(f"{name}: {content}" for name, content in results)
        return ToolTurn(words=tuple(f"Tool results: {quoted}".split()))
    if script is not None:
        return None
    return ToolTurn(calls=(_default_call(tools, body.get("tool_choice"), messages),))


def _results(messages: List[Dict[str, Any]]) -> List[Tuple[str, str]]:
    """``(tool name, content)`` of the ``tool`` messages that end the conversation."""
    tail: List[Dict[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        tail.insert(0, message)
    if not tail:
        return []
    names: Dict[str, str] = {}
    asked = messages[-len(tail) - 1] if len(messages) > len(tail) else {}
    for call in asked.get("tool_calls") or ():
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            names[str(call.get("id"))] = str(call["function"].get("name"))
    return [
        (names.get(str(m.get("tool_call_id")), "tool"), str(m.get("content") or "")) for m in tail
    ]


def _default_call(tools: List[Any], choice: Any, messages: List[Dict[str, Any]]) -> SimToolCall:
    functions = [
        t["function"]
        for t in tools
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name")
    ]
    wanted = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    chosen = next((f for f in functions if f["name"] == wanted), functions[0] if functions else {})
    users = [m for m in messages if m.get("role") == "user"]
    said = users[-1].get("content") if users else ""
    words = re.findall(r"\w+", said if isinstance(said, str) else "")
    word = words[-1] if words else "example"
    parameters = chosen.get("parameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    properties = parameters.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = parameters.get("required")
    names = required if isinstance(required, list) else list(properties)
    values = prompt_values(said)  # numbers and quoted texts of the message, in order
    arguments = {
        name: _sample(properties.get(name), word, values) for name in names if isinstance(name, str)
    }
    return SimToolCall(str(chosen.get("name", "tool")), json.dumps(arguments))


def _sample(schema: Any, word: str, values: PromptValues) -> Any:
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    taken = values.number(kind == "integer") if kind in ("integer", "number") else None
    if taken is None and (kind == "string" or not isinstance(kind, str)):
        taken = values.text()
    if taken is not None:
        return taken
    samples: Dict[str, Any] = {"integer": 1, "number": 1.5, "boolean": True, "array": []}
    if kind == "object":
        return {}
    return samples.get(kind, word) if isinstance(kind, str) else word


def _call_id() -> str:
    return str(100000000 + uuid.uuid4().int % 900000000)  # LM Studio's ids are digits


def answer_tool_calls(
    ex: Exchange,
    inst: _Instance,
    calls: Sequence[SimToolCall],
    request_id: str,
    prompt_tokens: int,
    *,
    stream: bool,
    include_usage: bool,
) -> None:
    """Answer with ``calls`` and ``finish_reason: "tool_calls"``, whole or streamed."""
    ids = [_call_id() for _ in calls]
    tokens = sum(inst.model.tokens(c.name + c.arguments) for c in calls)
    if not stream:
        ex.engine.generate(inst, tokens)
        body = shapes.completion_body(
            chat=True,
            request_id=request_id,
            model_id=inst.id,
            text="",
            finish_reason="tool_calls",
            prompt_tokens=prompt_tokens,
            completion_tokens=tokens,
        )
        body["choices"][0]["message"]["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for i, c in zip(ids, calls)
        ]
        ex.send_json(200, body)
        return
    ex.engine.count_stream()
    sink = ex.open_stream()
    first = True
    for index, (call_id, call) in enumerate(zip(ids, calls)):
        head = {"name": call.name, "arguments": ""}
        pieces = [{"index": index, "id": call_id, "type": "function", "function": head}]
        args = call.arguments
        for start in range(0, len(args), ARGUMENT_PIECE_CHARS):
            piece = args[start : start + ARGUMENT_PIECE_CHARS]
            pieces.append({"index": index, "function": {"arguments": piece}})
        for fragment in pieces:
            delta: Dict[str, Any] = {"tool_calls": [fragment]}
            if first:
                delta["role"], first = "assistant", False
            if not sink.content(shapes.chat_chunk(request_id, inst.id, delta)):
                return
            ex.engine.generate(inst, 1)
    last = shapes.chat_chunk(request_id, inst.id, {}, "tool_calls")
    tail = [last]
    if include_usage:
        tail.append(shapes.usage_chunk(last, prompt_tokens, tokens))
    sink.finish(tail, done=True)
