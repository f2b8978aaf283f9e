"""Schema-shaped answers: ``response_format`` as LM Studio and llama.cpp's server take it.

LM Studio (the ``v1`` and ``v0`` simulators) takes ``{"type": "json_schema",
"json_schema": {"schema": ..}}`` and refuses ``json_object`` with HTTP 400 and a bare
string error. The ``openai`` simulator behaves like llama-cpp-python's server (0.3.36,
measured): ``{"type": "json_object", "schema": ..}`` is taken, ``json_schema`` refused
with HTTP 500 and its pydantic validation message. An accepted request is answered with
JSON that conforms to the schema, made from the schema alone (the same schema always
gives the same answer); a ``schema_invalid`` fault makes one answer break it.
"""

from __future__ import annotations

import json
from typing import Any, List, Mapping, Optional

from ..jsonschema_lite import resolve_ref
from ._engine import SimError

__all__ = ["LMSTUDIO_REFUSAL", "LLAMA_CPP_REFUSAL", "example_value", "schema_asked", "schema_words"]

LMSTUDIO_REFUSAL = "'response_format.type' must be 'json_schema' or 'text'"
"""LM Studio's HTTP 400 error (a bare string) for any other ``response_format.type``."""

LLAMA_CPP_REFUSAL = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', "
    "'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': %r, 'ctx': "
    "{'expected': \"'text' or 'json_object'\"}}\n\n  File \"llama_cpp/server/app.py\", "
    "line 376, in create_chat_completion\n    POST %s"
)
"""llama-cpp-python's HTTP 500 message for a ``response_format.type`` it does not take."""

_ANY_OBJECT = {"type": "object"}
_MAX_DEPTH = 16
_STRING = "example"


def schema_asked(api: str, body: Mapping[str, Any], path: str) -> Optional[Mapping[str, Any]]:
    """The schema the answer to ``body`` must follow (``{"type": "object"}`` for a bare
    JSON request), or ``None`` when no JSON is asked.

    Raises:
        SimError: the server refuses this ``response_format``, as the real one does.
    """
    found = body.get("response_format")
    if found is None:
        return None
    kind = found.get("type") if isinstance(found, dict) else None
    if kind == "text":
        return None
    if api == "openai":
        if kind != "json_object":
            message = LLAMA_CPP_REFUSAL % (kind, path)
            raise SimError(500, message, type="internal_server_error")
        schema = found.get("schema")
        return schema if isinstance(schema, dict) else _ANY_OBJECT
    if kind != "json_schema":
        raise SimError(400, LMSTUDIO_REFUSAL, plain=True)
    inner = found.get("json_schema")
    schema = inner.get("schema") if isinstance(inner, dict) else None
    if not isinstance(schema, dict):
        raise SimError(400, "'response_format.json_schema.schema' is required", plain=True)
    return schema


def schema_words(schema: Mapping[str, Any], *, broken: bool = False) -> List[str]:
    """The answer to a JSON request, split at spaces (the simulator streams words).

    ``broken``: the answer lacks the first required property of the top-level object,
    or, when it has none, is cut short (not JSON at all).
    """
    value = example_value(schema, schema)
    text = json.dumps(value)
    if broken:
        top = _resolved(schema, schema)
        required = [k for k in top.get("required") or () if isinstance(value, dict) and k in value]
        if required:
            assert isinstance(value, dict)
            text = json.dumps({k: v for k, v in value.items() if k != required[0]})
        else:
            text = text[:-1] if len(text) > 1 else "not json"
    return text.split(" ")


def _resolved(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    for _ in range(_MAX_DEPTH):
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            break
        schema = resolve_ref(ref, root)
    return schema


def example_value(schema: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    """A value conforming to ``schema`` (the first ``enum`` choice, the first ``anyOf``
    branch, every property, ``max(minItems, 1)`` items, numbers at their lower bound...)."""
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return _STRING if schema is not False else None
    schema = _resolved(schema, root)
    if "const" in schema:
        return schema["const"]
    choices = schema.get("enum")
    if isinstance(choices, list) and choices:
        return choices[0]
    for name in ("anyOf", "oneOf"):
        branches = schema.get(name)
        if isinstance(branches, list) and branches:
            return example_value(branches[0], root, depth + 1)
    parts = schema.get("allOf")
    if isinstance(parts, list) and parts:
        merged: dict = {k: v for k, v in schema.items() if k != "allOf"}  # type: ignore[type-arg]
        for part in parts:
            if isinstance(part, Mapping):
                for key, value in _resolved(part, root).items():
                    merged[key] = _merged(merged.get(key), value)
        return example_value(merged, root, depth + 1)
    kind = _type_of(schema)
    if kind == "object":
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        return {k: example_value(v, root, depth + 1) for k, v in props.items()}
    if kind == "array":
        return _example_array(schema, root, depth)
    if kind in ("integer", "number"):
        return _example_number(schema, kind)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _example_string(schema)


def _merged(old: Any, new: Any) -> Any:
    """``allOf`` parts joined: properties merged, required lists put end to end."""
    if isinstance(old, dict) and isinstance(new, Mapping):
        return {**old, **new}
    if isinstance(old, list) and isinstance(new, list):
        return old + new
    return new


def _type_of(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        named = [k for k in kind if isinstance(k, str) and k != "null"]
        kind = named[0] if named else (kind[0] if kind else None)
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    return "array" if "items" in schema else "string"


def _example_array(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> List[Any]:
    items = schema.get("items")
    if isinstance(items, list):
        return [example_value(sub, root, depth + 1) for sub in items]
    low, high = schema.get("minItems"), schema.get("maxItems")
    count = max(low if isinstance(low, int) else 0, 1)
    if isinstance(high, int):
        count = min(count, high)
    return [example_value(items, root, depth + 1) for _ in range(count)]


def _example_number(schema: Mapping[str, Any], kind: str) -> Any:
    value: float = 1
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(low, (int, float)) and value < low:
        value = low
    if isinstance(ex_low, (int, float)) and value <= ex_low:
        value = ex_low + 1 if kind == "integer" else ex_low + 0.5
    if isinstance(high, (int, float)) and value > high:
        value = high
    if isinstance(ex_high, (int, float)) and value >= ex_high:
        value = ex_high - 1 if kind == "integer" else ex_high - 0.5
    return int(value) if kind == "integer" else float(value)


def _example_string(schema: Mapping[str, Any]) -> str:
    text = _STRING
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(text) < low:
        text += "x" * (low - len(text))
    if isinstance(high, int):
        text = text[:high]
    return text
