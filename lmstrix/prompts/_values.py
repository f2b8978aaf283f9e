"""Values in prompt templates: finding a dotted name, and turning a value into text.

Private helpers of :mod:`lmstrix.prompts`. Strings are inserted as they are; booleans
as ``true``/``false``; numbers with ``str()``; dates and times with ``isoformat()``; lists
as their items joined with newlines; a table (mapping) cannot be inserted whole.
"""

from __future__ import annotations

import collections.abc
import datetime
from typing import Any, Mapping, Optional, Sequence

from ..errors import TemplateError

__all__ = ["NOT_FOUND", "lookup", "scalar_text", "table_error", "variable_text"]

#: Returned by :func:`lookup` when a name is not there (``None`` is a value).
NOT_FOUND: Any = object()


def lookup(variables: Mapping[str, Any], name: str) -> Any:
    """Find a dotted name in nested mappings and lists (items by number), or ``NOT_FOUND``."""
    if "." in name and name in variables:  # a flat dotted key: {"persona.name": "Ada"}
        return variables[name]
    node: Any = variables
    for part in name.split("."):
        if isinstance(node, collections.abc.Mapping):
            if part not in node:
                return NOT_FOUND
            node = node[part]
        elif isinstance(node, (list, tuple)) and _is_index(part) and int(part) < len(node):
            node = node[int(part)]
        else:
            return NOT_FOUND
    return node


def variable_text(name: str, value: Any) -> str:
    """Convert a variable's value to the text inserted, literally."""
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Mapping):
        raise table_error(name, [str(k) for k in value], "variable")
    if isinstance(value, (list, tuple)):
        return "\n".join(_item_text(name, i, item) for i, item in enumerate(value))
    text = scalar_text(value)
    if text is not None:
        return text
    if isinstance(value, (bytes, bytearray)):
        raise TemplateError(f"variable {name!r} is bytes; decode it to a str first")
    return str(value)


def _item_text(name: str, index: int, item: Any) -> str:
    if isinstance(item, str):
        return item
    text = scalar_text(item)
    if text is None:
        raise TemplateError(
            f"variable {name!r} is a list whose item {index} is a {type(item).__name__};"
            f" use {name}.{index}... to pick from it, or pass a list of strings"
        )
    return text


def scalar_text(value: Any) -> Optional[str]:
    """The text of a TOML/JSON scalar, or ``None`` when ``value`` is not one."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date too
        return value.isoformat()
    return None


def table_error(name: str, keys: Sequence[str], kind: str) -> TemplateError:
    """The error for a table used as a value: it names the first key as an example."""
    hint = f", use {name}.{keys[0]}" if keys else " (and it is empty)"
    return TemplateError(f"{kind} {name!r} is a table{hint}")


def _is_index(part: str) -> bool:
    # ASCII digits only: "²".isdigit() is true but int("²") fails.
    return part.isascii() and part.isdigit()
