"""``response_format`` as each server wants it: what the caller asked, and the wire shape.

A caller asks for structured output with ``schema={...}`` (a JSON schema) or with
``response_format`` in either shape servers use:

- ``{"type": "json_schema", "json_schema": {"name": .., "strict": .., "schema": {..}}}``
  (OpenAI structured outputs; the only JSON shape LM Studio takes: it answers
  ``json_object`` with HTTP 400 "'response_format.type' must be 'json_schema' or 'text'");
- ``{"type": "json_object", "schema": {..}}`` (the schema is optional), which
  llama-cpp-python's server takes, refusing ``json_schema`` (HTTP 500 "Input should be
  'text' or 'json_object'", measured on llama-cpp-python 0.3.36).

Whatever was asked is sent in the *style* of the server: ``json_schema`` to LM Studio
(v1 and v0 APIs), ``json_object`` with ``schema`` to an OpenAI-only server. A style can be
forced per call (``schema_style=``) or per client (``client.schema_style = ...``) for a
server the detection gets wrong (vLLM or Ollama, which are OpenAI-only here but take
``json_schema``). ``{"type": "text"}`` is passed through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, MutableMapping, Optional

__all__ = [
    "DEFAULT_SCHEMA_RETRIES",
    "STRUCTURED_KEYS",
    "STYLES",
    "Structured",
    "style_for",
    "take_structured",
    "wire_format",
]

STYLES = ("json_schema", "json_object")
"""The two ways of asking a server for JSON (see the module docstring)."""

STRUCTURED_KEYS = frozenset({"response_format", "schema", "schema_retries", "schema_style"})
"""Request parameters this module reads (the last three are never sent as they are)."""

DEFAULT_SCHEMA_RETRIES = 1
"""Answers asked again after an invalid one, unless ``schema_retries`` says otherwise."""

_DEFAULT_NAME = "response"


@dataclass(frozen=True)
class Structured:
    """What the caller asked: a JSON answer, conforming to ``schema`` when there is one."""

    schema: Optional[Mapping[str, Any]] = None
    name: str = _DEFAULT_NAME
    strict: bool = True
    retries: int = DEFAULT_SCHEMA_RETRIES
    style: Optional[str] = None


def take_structured(params: MutableMapping[str, Any]) -> Optional[Structured]:
    """Read (and remove) the structured-output parameters of a request.

    ``response_format`` is removed too when it asks for JSON (the caller puts back
    :func:`wire_format`); ``None`` when no JSON answer is asked (``schema_retries`` and
    ``schema_style`` are still removed, so they never reach the server).

    Raises:
        TypeError: a parameter has the wrong type.
        ValueError: an unknown ``response_format`` type or style, both ``schema`` and a
            JSON ``response_format``, or a negative ``schema_retries``.
    """
    schema = params.pop("schema", None)
    retries = params.pop("schema_retries", None)
    style = params.pop("schema_style", None)
    if style is not None and style not in STYLES:
        raise ValueError(f"schema_style must be one of {STYLES}, not {style!r}")
    if retries is None:
        retries = DEFAULT_SCHEMA_RETRIES
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"schema_retries must be a whole number >= 0, not {retries!r}")
    if schema is not None and not isinstance(schema, Mapping):
        raise TypeError(f"schema must be a JSON schema (a dict), not {type(schema).__name__}")
    asked = _from_response_format(params.get("response_format"))
    if asked is None:
        if schema is None:
            return None
        return Structured(schema=schema, retries=retries, style=style)
    if schema is not None:
        raise ValueError("give schema= or a JSON response_format, not both")
    del params["response_format"]
    return Structured(asked.schema, asked.name, asked.strict, retries, style)


def _from_response_format(value: Any) -> Optional[Structured]:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"response_format must be a dict, not {type(value).__name__}")
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return Structured(schema=_schema_of(value.get("schema"), "response_format.schema"))
    if kind == "json_schema":
        inner = value.get("json_schema")
        if not isinstance(inner, Mapping):
            raise TypeError("response_format.json_schema must be a dict holding 'schema'")
        name = inner.get("name")
        return Structured(
            schema=_schema_of(inner.get("schema"), "response_format.json_schema.schema"),
            name=name if isinstance(name, str) and name else _DEFAULT_NAME,
            strict=inner.get("strict") is not False,
        )
    raise ValueError(
        f"response_format.type must be 'json_schema', 'json_object' or 'text', not {kind!r}"
    )


def _schema_of(value: Any, where: str) -> Optional[Mapping[str, Any]]:
    if value is None or isinstance(value, Mapping):
        return value
    raise TypeError(f"{where} must be a JSON schema (a dict), not {type(value).__name__}")


def style_for(server_api: str) -> str:
    """The style a server of API family ``server_api`` (``v1``, ``v0``, ``openai``) takes."""
    return "json_object" if server_api == "openai" else "json_schema"


def wire_format(asked: Structured, style: str) -> Dict[str, Any]:
    """The ``response_format`` to send for ``asked`` in ``style``.

    ``json_schema`` needs a schema: a bare JSON request gets ``{"type": "object"}``.
    """
    if style == "json_object":
        found: Dict[str, Any] = {"type": "json_object"}
        if asked.schema is not None:
            found["schema"] = dict(asked.schema)
        return found
    schema = dict(asked.schema) if asked.schema is not None else {"type": "object"}
    return {
        "type": "json_schema",
        "json_schema": {"name": asked.name, "strict": asked.strict, "schema": schema},
    }
