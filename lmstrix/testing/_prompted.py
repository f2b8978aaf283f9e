"""Values the simulated model takes from the prompt: numbers and quoted text.

A real model fills a tool call's arguments, or the keys of a free-form JSON answer, from
what the user wrote. The simulator does the same in the simplest way that is still
deterministic:

- :func:`prompt_values`: the numbers of the message (``magic_function(3)`` gives 3), and
  its quoted texts (``'...'`` or ``"..."``), in order; tool-call arguments take them (an
  ``integer`` or ``number`` parameter the next number, a ``string`` the next quoted text),
  falling back to the fixed samples when the message has none left;
- :func:`json_mode_schema`: a JSON request without a shape (``{"type": "object"}``, what
  JSON mode sends) is answered with an object whose keys are the quoted words of the
  message ("Return JSON with 'setup' and 'punchline' keys"), each a string.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping

__all__ = ["PromptValues", "json_mode_schema", "prompt_values"]

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_QUOTED = re.compile(r"(?<!\w)'([^'\n]+)'(?!\w)|\"([^\"\n]+)\"")
_KEY = re.compile(r"[A-Za-z_][\w-]*")


class PromptValues:
    """The numbers and quoted texts of a message, handed out in order."""

    def __init__(self, text: str) -> None:
        self.numbers: List[str] = _NUMBER.findall(text)
        self.quoted: List[str] = [a or b for a, b in _QUOTED.findall(text)]

    def number(self, integer: bool) -> Any:
        """The next number of the message (``None`` when none is left)."""
        if not self.numbers:
            return None
        found = self.numbers.pop(0)
        if integer:
            return int(float(found))
        return float(found) if "." in found else int(found)

    def text(self) -> Any:
        """The next quoted text of the message (``None`` when none is left)."""
        return self.quoted.pop(0) if self.quoted else None


def prompt_values(text: Any) -> PromptValues:
    """The values of ``text`` (nothing when it is not a string)."""
    return PromptValues(text if isinstance(text, str) else "")


def json_mode_schema(schema: Mapping[str, Any], text: Any) -> Mapping[str, Any]:
    """``schema``, or, for a bare ``{"type": "object"}``, one with the message's quoted keys."""
    if dict(schema) != {"type": "object"}:
        return schema
    keys: List[str] = []
    for key in prompt_values(text).quoted:
        if _KEY.fullmatch(key) and key not in keys:
            keys.append(key)
    if not keys:
        return schema
    properties: Dict[str, Any] = {key: {"type": "string"} for key in keys}
    return {"type": "object", "properties": properties, "required": keys}
