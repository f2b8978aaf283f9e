"""A small JSON Schema validator, standard library only: the subset schema generators emit.

:func:`schema_errors` checks a JSON value (what :func:`json.loads` gives) against a
schema and returns one message per problem, each starting with the JSON path of the
value at fault (``$``, ``$.items[2].name``)::

    >>> schema_errors({"age": "x"}, {"type": "object", "required": ["name"],
    ...     "properties": {"age": {"type": "integer"}}})
    ["$: missing required property 'name'", '$.age: expected integer, got string']

Keywords understood: ``type`` (one name or a list: ``object``, ``array``, ``string``,
``number``, ``integer``, ``boolean``, ``null``), ``properties``, ``required``,
``additionalProperties`` (``false`` or a schema), ``enum``, ``const``, ``items``,
``minItems``/``maxItems``, ``minLength``/``maxLength``, ``minimum``/``maximum``,
``exclusiveMinimum``/``exclusiveMaximum`` (numbers), ``anyOf``, ``oneOf``, ``allOf``,
and local references (``$ref`` to ``#``, ``#/$defs/...`` or ``#/definitions/...``).
That is what pydantic's ``model_json_schema()`` and the OpenAI/LM Studio structured
output examples use. Any other keyword (``format``, ``pattern``, ``title``,
``description``, ``default``, ...) is ignored: a value is never refused for it.

A boolean is not a number here (``True`` fails ``integer``), and ``1.0`` counts as an
integer, as the JSON Schema specification says.
"""

from __future__ import annotations

import json
from typing import Any, List, Mapping

__all__ = ["SCHEMA_KEYWORDS", "resolve_ref", "schema_errors", "type_name"]

SCHEMA_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "const",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "anyOf",
        "oneOf",
        "allOf",
        "$ref",
        "$defs",
        "definitions",
    }
)
"""The keywords :func:`schema_errors` checks; any other keyword is ignored."""

_MAX_REF_DEPTH = 64


def type_name(value: Any) -> str:
    """The JSON type of a Python value from :func:`json.loads` (``integer`` for ``1.0``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    found = type_name(value)
    return found == name or (name == "number" and found == "integer")


def resolve_ref(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema a local ``$ref`` (``#``, ``#/$defs/Name``, any ``#/a/b`` path) points at.

    Raises:
        ValueError: the reference is not local or does not lead to a schema.
    """
    if not ref.startswith("#"):
        raise ValueError(f"only local references (#/...) are supported, not {ref!r}")
    node: Any = root
    for raw in (p for p in ref[1:].split("/") if p):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            raise ValueError(f"the reference {ref!r} leads nowhere in the schema")
    if not isinstance(node, Mapping):
        raise ValueError(f"the reference {ref!r} does not lead to a schema")
    return node


def schema_errors(value: Any, schema: Any) -> List[str]:
    """Every way ``value`` breaks ``schema``, as ``"<json path>: <what is wrong>"``; ``[]``
    when it conforms. ``schema`` is a JSON schema dict (``True``/``{}`` accept anything,
    ``False`` nothing).

    Raises:
        ValueError: the schema has a ``$ref`` that cannot be followed.
    """
    checker = _Checker(schema if isinstance(schema, Mapping) else {})
    checker.check(value, schema, "$", 0)
    return checker.out


class _Checker:
    """One validation: the root schema (for ``$ref``) and the messages found so far."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.out: List[str] = []

    def check(self, value: Any, schema: Any, path: str, depth: int) -> None:
        out = self.out
        if schema is True or schema is None:
            return
        if schema is False:
            out.append(f"{path}: no value is allowed here")
            return
        if not isinstance(schema, Mapping):
            return
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if depth >= _MAX_REF_DEPTH:
                raise ValueError(f"the schema's references loop (at {ref!r})")
            self.check(value, resolve_ref(ref, self.root), path, depth + 1)
        if not _check_type(value, schema, path, out):
            return  # the other keywords would only repeat the same complaint
        _check_values(value, schema, path, out)
        for name in ("anyOf", "oneOf", "allOf"):
            branches = schema.get(name)
            if isinstance(branches, list) and branches:
                self.branches(value, name, branches, path, depth)
        if isinstance(value, dict):
            self.object(value, schema, path, depth)
        elif isinstance(value, list):
            self.array(value, schema, path, depth)
        elif isinstance(value, str):
            _check_length(len(value), schema, "minLength", "maxLength", "character", path, out)
        elif type_name(value) in ("integer", "number"):
            _check_number(value, schema, path, out)

    def branches(self, value: Any, name: str, branches: List[Any], path: str, depth: int) -> None:
        results = []
        for branch in branches:
            sub = _Checker(self.root)
            sub.check(value, branch, path, depth + 1)
            results.append(sub.out)
        passed = sum(1 for r in results if not r)
        if name == "allOf":
            for found in results:
                self.out.extend(found)
        elif name == "anyOf" and not passed:
            self.out.append(f"{path}: matches none of the anyOf choices ({_closest(results)})")
        elif name == "oneOf" and passed != 1:
            if passed:
                self.out.append(f"{path}: matches {passed} of the oneOf choices, not exactly one")
            else:
                self.out.append(f"{path}: matches none of the oneOf choices ({_closest(results)})")

    def object(
        self, value: Mapping[str, Any], schema: Mapping[str, Any], path: str, depth: int
    ) -> None:
        required = schema.get("required")
        if isinstance(required, list):
            for key in required:
                if isinstance(key, str) and key not in value:
                    self.out.append(f"{path}: missing required property {key!r}")
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            where = _join(path, key)
            if key in props:
                self.check(item, props[key], where, depth + 1)
            elif extra is False:
                self.out.append(
                    f"{path}: property {key!r} is not allowed (additionalProperties is false)"
                )
            elif isinstance(extra, Mapping):
                self.check(item, extra, where, depth + 1)

    def array(self, value: List[Any], schema: Mapping[str, Any], path: str, depth: int) -> None:
        _check_length(len(value), schema, "minItems", "maxItems", "item", path, self.out)
        items = schema.get("items")
        if isinstance(items, (Mapping, bool)):
            for i, item in enumerate(value):
                self.check(item, items, f"{path}[{i}]", depth + 1)
        elif isinstance(items, list):  # the older tuple form: one schema per position
            for i, (item, sub) in enumerate(zip(value, items)):
                self.check(item, sub, f"{path}[{i}]", depth + 1)


def _check_type(value: Any, schema: Mapping[str, Any], path: str, out: List[str]) -> bool:
    wanted = schema.get("type")
    names = [wanted] if isinstance(wanted, str) else wanted
    if not isinstance(names, list) or not names:
        return True
    if any(isinstance(n, str) and _is_type(value, n) for n in names):
        return True
    out.append(f"{path}: expected {' or '.join(str(n) for n in names)}, got {type_name(value)}")
    return False


def _check_values(value: Any, schema: Mapping[str, Any], path: str, out: List[str]) -> None:
    if "const" in schema and not _same(value, schema["const"]):
        out.append(f"{path}: expected {_show(schema['const'])}, got {_show(value)}")
    choices = schema.get("enum")
    if isinstance(choices, list) and not any(_same(value, c) for c in choices):
        shown = ", ".join(_show(c) for c in choices)
        out.append(f"{path}: {_show(value)} is not one of {shown}")


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``True != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _closest(results: List[List[str]]) -> str:
    best = min(results, key=len)
    return "; ".join(best[:3])


def _join(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _check_length(
    size: int,
    schema: Mapping[str, Any],
    low_key: str,
    high_key: str,
    unit: str,
    path: str,
    out: List[str],
) -> None:
    low: Any = schema.get(low_key)
    high: Any = schema.get(high_key)
    if _is_bound(low) and size < low:
        out.append(f"{path}: has {_count(size, unit)}, fewer than {low_key} {low}")
    if _is_bound(high) and size > high:
        out.append(f"{path}: has {_count(size, unit)}, more than {high_key} {high}")


def _count(size: int, unit: str) -> str:
    return f"{size} {unit}" + ("" if size == 1 else "s")


def _is_bound(bound: Any) -> bool:
    return isinstance(bound, (int, float)) and not isinstance(bound, bool)


def _check_number(value: Any, schema: Mapping[str, Any], path: str, out: List[str]) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if _is_bound(low) and value < low:
        out.append(f"{path}: {_show(value)} is less than the minimum {low}")
    if _is_bound(high) and value > high:
        out.append(f"{path}: {_show(value)} is more than the maximum {high}")
    low, high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if _is_bound(low) and value <= low:
        out.append(f"{path}: {_show(value)} is not more than the exclusive minimum {low}")
    if _is_bound(high) and value >= high:
        out.append(f"{path}: {_show(value)} is not less than the exclusive maximum {high}")
