"""``lmstrix chat --schema FILE``: the schema read from its file, the JSON answer shown.

The answer is asked for with ``schema=`` (see docs/user-guide/structured-output.md): the
library adapts ``response_format`` to the server, validates the answer and asks again
once when it does not conform. Printed: the parsed JSON, indented on a terminal and on
one line otherwise (for pipes); ``--json`` adds ``"parsed"`` to the chat document.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Mapping

from ._session import Session, UsageError

if TYPE_CHECKING:
    from ..types import Completion

__all__ = ["json_extras", "load_schema", "shown"]


def load_schema(session: Session, path: str) -> Dict[str, Any]:
    """The JSON schema in ``path``; a missing file, bad JSON or a non-object is bad input."""
    from ._cmd_chat import read_text

    try:
        text = read_text(session, path)
    except UsageError as exc:
        raise UsageError(f"--schema: {exc}") from None
    try:
        schema = json.loads(text)
    except ValueError as exc:
        where = getattr(exc, "lineno", None)
        at = f" at line {where}, column {getattr(exc, 'colno', '?')}" if where else ""
        reason = getattr(exc, "msg", str(exc))
        raise UsageError(
            f"--schema {path}: not valid JSON{at} ({reason}); give a JSON schema file"
        ) from None
    if not isinstance(schema, dict):
        raise UsageError(
            f"--schema {path}: a JSON schema is a JSON object, not a {type(schema).__name__}"
            ' (for instance {"type": "object", "properties": {...}})'
        )
    return schema


def shown(session: Session, completion: Completion) -> str:
    """What to print for an answer: its parsed JSON when a schema was given, else its text."""
    if completion.parsed is None:
        return completion.text.rstrip("\n")
    if session.is_tty(session.stdout):
        return json.dumps(completion.parsed, indent=2, ensure_ascii=False)
    return json.dumps(completion.parsed, ensure_ascii=False)


def json_extras(completion: Completion, params: Mapping[str, Any]) -> Dict[str, Any]:
    """``{"parsed": value}`` for the ``--json`` document when a schema was given."""
    return {"parsed": completion.parsed} if "schema" in params else {}
