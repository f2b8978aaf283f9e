"""Tools on the way out and tool calls on the way back: definitions, schemas, fragments.

``tools=`` of :meth:`~lmstrix.Client.chat` takes OpenAI function tools as they are, and
plain Python functions, described from their signature and docstring by
:func:`tool_definition`. A streamed answer sends each tool call in fragments (the
first with the id and the name, later ones adding text to the arguments);
:class:`ToolCallJoiner` puts them back together by index.
"""

from __future__ import annotations

import re
import typing
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..types import ToolCall

__all__ = ["TOOL_CHOICES", "ToolCallJoiner", "tool_definition", "wire_tools"]

TOOL_CHOICES = ("auto", "none", "required")
"""The ``tool_choice`` words LM Studio knows (0.3.15+); a dict names one function."""

_SIMPLE: Dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}
_ARG_LINE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?)\s*:\s*$")


def wire_tools(tools: Any, tool_choice: Any = None) -> List[Dict[str, Any]]:
    """``tools=`` as the server takes it: definitions checked lightly, functions described.

    Raises:
        TypeError: ``tools`` is not a list, or an item is neither a mapping nor a function.
        ValueError: a function tool has no name, or ``tool_choice`` is unknown.
    """
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
        raise TypeError(
            f"tools must be a list of tool definitions or functions, not {type(tools).__name__}"
        )
    result = [_one_tool(i, tool) for i, tool in enumerate(tools)]
    check_tool_choice(tool_choice)
    return result


def check_tool_choice(tool_choice: Any) -> None:
    """Refuse a ``tool_choice`` that is neither a known word nor a mapping."""
    if tool_choice is None or isinstance(tool_choice, Mapping):
        return
    if tool_choice not in TOOL_CHOICES:
        raise ValueError(
            f"tool_choice must be one of {', '.join(TOOL_CHOICES)} or "
            f'{{"type": "function", "function": {{"name": ...}}}}, not {tool_choice!r}'
        )


def _one_tool(position: int, tool: Any) -> Dict[str, Any]:
    if isinstance(tool, Mapping):
        if tool.get("type", "function") != "function":
            return dict(tool)  # another kind of tool (e.g. "mcp"): the server judges it
        function = tool.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"tools[{position}] has no function name: give "
                '{"type": "function", "function": {"name": ..., "parameters": {...}}}, '
                f"got {dict(tool)!r:.200}"
            )
        return {"type": "function", **tool}
    if callable(tool):
        return tool_definition(tool)
    raise TypeError(
        f"tools[{position}] must be a tool definition (a mapping) or a function, "
        f"not {type(tool).__name__}"
    )


def tool_definition(function: Callable[..., Any], name: Optional[str] = None) -> Dict[str, Any]:
    """An OpenAI function tool describing ``function``: its name (or ``name``), the first
    paragraph of its docstring, and a JSON schema of its parameters from their annotations
    (``str``, ``int``, ``float``, ``bool``, ``list``/``List[X]``, ``dict``/``Dict``,
    ``Optional[X]``; others accept any JSON value). Parameters without a default are
    required; ``Args:`` lines of a Google-style docstring describe them.

    Raises:
        ValueError: ``function`` has no usable name (a lambda given without ``name``).
    """
    import inspect  # only tools given as functions need it (a slow import)

    tool_name = name or getattr(function, "__name__", "")
    if not tool_name or tool_name == "<lambda>":
        raise ValueError(f"give {function!r} a name: tools={{'name': function}}")
    hints = _type_hints(function)
    summary, arg_help = _docstring_parts(inspect.getdoc(function) or "")
    properties: Dict[str, Any] = {}
    required: List[str] = []
    for param in inspect.signature(function).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            continue
        schema = _schema_of(hints.get(param.name, inspect.Parameter.empty))
        if param.name in arg_help:
            schema["description"] = arg_help[param.name]
        properties[param.name] = schema
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
    described: Dict[str, Any] = {"name": tool_name}
    if summary:
        described["description"] = summary
    described["parameters"] = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "function": described}


def _type_hints(function: Callable[..., Any]) -> Dict[str, Any]:
    """The parameters' annotations, resolved; one by one when some do not resolve (a
    name that is not defined, ``int | str`` before Python 3.10): those are left out."""
    try:
        return typing.get_type_hints(function)
    except Exception:
        pass
    namespace = getattr(function, "__globals__", {})
    hints: Dict[str, Any] = {}
    for name, annotation in getattr(function, "__annotations__", {}).items():
        try:
            # What get_type_hints does for each string annotation, one at a time.
            hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation
        except Exception:
            continue
    return hints


def _schema_of(annotation: Any) -> Dict[str, Any]:
    if annotation in _SIMPLE:
        return {"type": _SIMPLE[annotation]}
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union:
        rest = [a for a in args if a is not type(None)]
        return _schema_of(rest[0]) if len(rest) == 1 else {}
    if origin in (list, tuple, set, frozenset):
        schema: Dict[str, Any] = {"type": "array"}
        if len(args) == 1 and args[0] in _SIMPLE:
            schema["items"] = {"type": _SIMPLE[args[0]]}
        return schema
    if origin is dict:
        return {"type": "object"}
    return {}


def _docstring_parts(doc: str) -> Tuple[str, Dict[str, str]]:
    """The first paragraph, and ``{parameter: description}`` from an ``Args:`` section."""
    summary = " ".join(doc.split("\n\n", 1)[0].split())
    helps: Dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        section = _SECTION.match(line)
        if section:
            in_args = section.group(1) in ("Args", "Arguments", "Parameters")
            continue
        found = _ARG_LINE.match(line) if in_args else None
        if found:
            helps[found.group(1)] = found.group(2).strip()
    return summary, helps


class ToolCallJoiner:
    """Collects the tool-call fragments of one stream and joins them by index."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: Dict[int, List[Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, fragments: Sequence[ToolCall]) -> None:
        """Take the fragments of one chunk."""
        for piece in fragments:
            call = self._calls.get(piece.index)
            if call is None:
                self._calls[piece.index] = [piece.id, piece.name, [piece.arguments], piece.type]
                continue
            call[0] = call[0] or piece.id
            call[1] = call[1] or piece.name
            call[2].append(piece.arguments)

    def calls(self) -> Tuple[ToolCall, ...]:
        """The whole calls, in index order."""
        return tuple(
            ToolCall(id=c[0], name=c[1], arguments="".join(c[2]), index=i, type=c[3])
            for i, c in sorted(self._calls.items())
        )
