"""Scanner for prompt-template text: literal pieces and ``{{ name }}`` placeholders.

Private: :mod:`lmstrix.prompts` is the public face. One compiled regex walks the text
once with ``finditer`` and the pieces are kept in a list, so parsing is linear in the
size of the text and nothing is ever scanned twice.
"""

from __future__ import annotations

import re
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

from ..errors import TemplateSyntaxError

__all__ = [
    "ESCAPE",
    "NAME_RE",
    "SEGMENT_RE",
    "Piece",
    "Placeholder",
    "TemplateSyntaxError",
    "parse",
    "position",
]

#: Written in a template, this gives one literal ``{{`` in the output.
ESCAPE = "{{{{"

_SEGMENT = r"\w[\w-]*"
#: One part of a dotted name: a letter, digit or ``_``, then those or ``-``.
SEGMENT_RE = re.compile(_SEGMENT)
#: A whole placeholder name: parts joined by single dots, e.g. ``persona.short``.
NAME_RE = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")

# Order matters: the escape must win over a placeholder that starts at the same place,
# and the bare "{{" comes last so that anything opening a placeholder without being a
# well-formed one is caught and reported instead of silently passed through.
_TOKEN_RE = re.compile(r"\{\{\{\{|\{\{([^{}]*)\}\}|\{\{")
_SNIPPET_CHARS = 30
_HINT = "(write '{{{{' for a literal '{{')"


class Placeholder(NamedTuple):
    """A ``{{ name }}`` found in a template: the dotted name, and the text as written."""

    name: str
    raw: str


#: A parsed template is a list of literal strings and placeholders, in order.
Piece = Union[str, Placeholder]


def position(text: str, offset: int) -> Tuple[int, int]:
    """Return the 1-based ``(line, column)`` of ``offset`` in ``text``."""
    lineno = text.count("\n", 0, offset) + 1
    colno = offset - text.rfind("\n", 0, offset)
    return lineno, colno


def parse(text: str, source: str = "template") -> List[Piece]:
    """Split ``text`` into literal strings and :class:`Placeholder` items, in order.

    ``{{{{`` becomes a literal ``{{``; a ``}}`` outside a placeholder is plain text.

    Raises:
        TemplateSyntaxError: an unclosed or empty placeholder, or a name with characters
            other than letters, digits, ``_``, ``-`` and single dots between parts.
    """
    pieces: List[Piece] = []
    append = pieces.append
    # The same placeholder text usually comes back many times: check it only once.
    known: Dict[str, Piece] = {ESCAPE: "{{"}
    last = 0
    for match in _TOKEN_RE.finditer(text):
        start, end = match.span()
        if start > last:
            append(text[last:start])
        raw = match.group()
        piece = known.get(raw)
        if piece is None:
            piece = known[raw] = _placeholder(raw, match.group(1), text, start, source)
        append(piece)
        last = end
    if last < len(text):
        append(text[last:])
    return pieces


def _placeholder(raw: str, body: Optional[str], text: str, start: int, source: str) -> Placeholder:
    if body is None:
        raise _error(text, start, source, _opening_problem(text, start))
    name = body.strip()
    if not NAME_RE.fullmatch(name):
        raise _error(text, start, source, _name_problem(name))
    return Placeholder(name, raw)


def _opening_problem(text: str, start: int) -> str:
    snippet = text[start : start + _SNIPPET_CHARS]
    if text.find("}}", start + 2) < 0:
        return f"unclosed placeholder {snippet!r}: no '}}}}' follows {_HINT}"
    return f"malformed placeholder {snippet!r}: expected '{{{{ name }}}}' {_HINT}"


def _name_problem(name: str) -> str:
    if not name:
        return "empty placeholder: put a name between the braces"
    return (
        f"invalid placeholder name {name!r}: use letters, digits, '_' and '-',"
        f" with single dots between parts {_HINT}"
    )


def _error(text: str, offset: int, source: str, problem: str) -> TemplateSyntaxError:
    lineno, colno = position(text, offset)
    return TemplateSyntaxError(
        f"{source}, line {lineno}, column {colno}: {problem}",
        source=source,
        lineno=lineno,
        colno=colno,
    )
