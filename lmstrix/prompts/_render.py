"""Prompt templates: ``{{ name }}`` placeholders, and prompt libraries in TOML or JSON.

A placeholder names a variable or a library entry; dotted names (``{{persona.short}}``)
reach into nested tables, and a number picks a list item (``{{examples.0}}``). Rendering
looks every name up in the variables first, then in the library: an entry's text may
itself hold placeholders, which are resolved the same way (recursively, each entry once
per call), while a variable's value is inserted as it is and never scanned again, so
user text cannot inject placeholders. ``{{{{`` writes a literal ``{{``.

Values that are not strings: ``true``/``false`` for booleans, ``str()`` for numbers,
``isoformat()`` for dates and times, list items joined with newlines; a table cannot be
inserted whole, and ``None`` counts as "not given". See ``docs/user-guide/prompts.md``.
"""

from __future__ import annotations

import collections.abc
import difflib
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import MissingVariableError, TemplateCycleError, TemplateError
from ._files import PromptFormat, load_library_file
from ._parse import (
    ESCAPE,
    NAME_RE,
    SEGMENT_RE,
    Piece,
    Placeholder,
    TemplateSyntaxError,
    parse,
)
from ._values import NOT_FOUND, lookup, scalar_text, table_error, variable_text

__all__ = [
    "ESCAPE",
    "PromptLibrary",
    "TemplateSyntaxError",
    "escape",
    "parse_assignments",
    "render",
]

#: Tables and lists nested deeper than this are refused (it also stops self-containing
#: Python objects from looping).
MAX_DEPTH = 100
#: A rendered entry or template longer than this is refused: entries that each use the
#: next one twice double the text at every level and would otherwise exhaust memory.
MAX_RENDERED_CHARS = 20_000_000


class PromptLibrary:
    """Named prompt templates, nested in tables, that may refer to each other by name.

    Build one with :meth:`from_file` or :meth:`from_dict`. Every string entry is parsed
    when the library is built, so a malformed placeholder is reported at load time.
    """

    def __init__(self, data: Mapping[str, Any], *, path: Optional[str] = None) -> None:
        if not isinstance(data, collections.abc.Mapping):
            raise TemplateError(
                f"a prompt library must be a table of entries, not {type(data).__name__}"
            )
        self.path = path
        self._raw: Dict[str, Any] = {}
        self._texts: Dict[str, List[Piece]] = {}
        self._values: Dict[str, str] = {}
        self._lists: Dict[str, List[Piece]] = {}
        self._tables: Dict[str, List[str]] = {}
        self._index(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromptLibrary:
        """Build a library from nested mappings (string keys; string, number, list values).

        Raises:
            TemplateError: a key is not a valid name, a value has an unsupported type or
                ``None``, or (:class:`TemplateSyntaxError`) an entry has a bad placeholder.
        """
        return cls(data)

    @classmethod
    def from_file(
        cls, path: Union[str, os.PathLike[str]], *, formats: Sequence[PromptFormat] = ()
    ) -> PromptLibrary:
        """Load a ``.json`` or ``.toml`` library (TOML needs Python 3.11+ or ``tomli``), or
        one in a plugin's format: ``formats`` (``lmstrix.plugins.load().prompt_formats``).

        Raises:
            TemplateSyntaxError: the file is not valid JSON/TOML/UTF-8; the message and
                attributes give the file, line and column.
            TemplateError: the file cannot be read, has another suffix, or its content is
                not a valid library.
        """
        text_path = str(path)
        return cls(load_library_file(text_path, formats), path=text_path)

    def names(self) -> List[str]:
        """Return the sorted dotted names of all string entries (list items included)."""
        return sorted(self._texts)

    def get(self, name: str, default: Any = None) -> Any:
        """Return the value stored under a dotted name as loaded (unrendered), or ``default``."""
        return self._raw.get(name, default)

    def __contains__(self, name: object) -> bool:
        """Tell whether a dotted name exists (an entry, a list or a table)."""
        return name in self._raw

    def __repr__(self) -> str:
        where = f" from {self.path!r}" if self.path else ""
        return f"<PromptLibrary: {len(self._texts)} templates{where}>"

    def render(
        self,
        name: str,
        variables: Optional[Mapping[str, Any]] = None,
        *,
        strict: bool = True,
    ) -> str:
        """Render the entry ``name``; ``variables`` fill (and shadow) the names inside it.

        Raises:
            MissingVariableError: there is no such entry, or (``strict``) names are missing.
            TemplateCycleError: entries refer to each other in a loop.
            TemplateError: ``name`` is a table, or a value cannot be inserted.
        """
        if name in self._values:
            return self._values[name]
        if name in self._tables:
            raise table_error(name, self._tables[name], "entry")
        if name not in self._texts and name not in self._lists:
            raise MissingVariableError(
                f"no entry {name!r} in the prompt library{self._suggest(name)}",
                missing=(name,),
            )
        return _Renderer(self, variables, strict).run(name, self._entry_pieces(name))

    # -- building ------------------------------------------------------------------------

    def _index(self, data: Mapping[str, Any]) -> None:
        # An explicit stack, not recursion: deep tables cannot hit the recursion limit.
        stack: List[Any] = [("", data, 0)]
        while stack:
            name, value, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise TemplateError(f"{self._where(name)}: nested more than {MAX_DEPTH} deep")
            if name:
                self._raw[name] = value
            children: List[str] = []
            if isinstance(value, collections.abc.Mapping):
                for key in value:
                    if not isinstance(key, str) or not SEGMENT_RE.fullmatch(key):
                        where = self._where(name) if name else self.path or "library"
                        raise TemplateError(
                            f"{where}: invalid entry name "
                            f"{key!r}: use letters, digits, '_' and '-' (nest tables "
                            "instead of dots)"
                        )
                    children.append(key)
                    stack.append((_join(name, key), value[key], depth + 1))
                if name:
                    self._tables[name] = children
            elif isinstance(value, (list, tuple)):
                self._lists[name] = _join_pieces(f"{name}.{i}" for i in range(len(value)))
                stack.extend((f"{name}.{i}", item, depth + 1) for i, item in enumerate(value))
            elif isinstance(value, str):
                self._texts[name] = parse(value, self._where(name))
            else:
                text = scalar_text(value)
                if text is None:
                    kind = "null" if value is None else type(value).__name__
                    raise TemplateError(
                        f"{self._where(name)}: unsupported value of type {kind}; use a "
                        "string, number, boolean, date, list or table"
                    )
                self._values[name] = text

    def _where(self, name: str) -> str:
        where = f"entry {name!r}"
        return f"{where} of {self.path}" if self.path else where

    def _entry_pieces(self, name: str) -> List[Piece]:
        pieces = self._texts.get(name)
        return self._lists[name] if pieces is None else pieces

    def _suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3)
        if close:
            return "; did you mean " + ", ".join(repr(c) for c in close) + "?"
        return ""


def render(
    template: str,
    variables: Optional[Mapping[str, Any]] = None,
    *,
    library: Union[PromptLibrary, Mapping[str, Any], None] = None,
    strict: bool = True,
) -> str:
    """Fill the placeholders of ``template`` from ``variables``, then from ``library``.

    ``library`` may be a :class:`PromptLibrary` or a plain mapping (parsed on each call;
    build a :class:`PromptLibrary` once to reuse it). With ``strict=False`` names that
    have no value are left in the text as written instead of raising.

    Raises:
        MissingVariableError: (``strict``) names had no value; all are listed at once.
        TemplateCycleError: library entries refer to each other in a loop.
        TemplateSyntaxError: a placeholder is malformed.
        TemplateError: a table is used as a value, or a value cannot be inserted.
    """
    if not isinstance(template, str):
        raise TypeError(f"template must be a str, not {type(template).__name__}")
    if library is not None and not isinstance(library, PromptLibrary):
        library = PromptLibrary.from_dict(library)
    return _Renderer(library, variables, strict).run(None, parse(template))


def escape(text: str) -> str:
    """Return a template that renders to exactly ``text`` (every ``{{`` doubled).

    >>> escape("Write {{name}}")
    'Write {{{{name}}'
    """
    return text.replace("{{", ESCAPE)


def parse_assignments(assignments: Iterable[str]) -> Dict[str, Any]:
    """Turn ``NAME=VALUE`` strings (as given to ``--var``) into nested variables.

    Dotted names nest: ``["a.b=1", "c=x"]`` gives ``{"a": {"b": "1"}, "c": "x"}``. Values
    stay strings, kept exactly as written after the first ``=``; a later name wins.

    Raises:
        TemplateError: no ``=``, an invalid name, or a name used both as a value and as
            a table (``a=1`` and ``a.b=2``).
    """
    result: Dict[str, Any] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise TemplateError(f"expected NAME=VALUE, got {item!r}")
        if not NAME_RE.fullmatch(name):
            raise TemplateError(
                f"invalid variable name {name!r} in {item!r}: use letters, digits, '_' and"
                " '-', with dots between parts"
            )
        parts = name.split(".")
        node = result
        for i, part in enumerate(parts):
            existing = node.get(part)
            last = i == len(parts) - 1
            if (existing is not None) and (isinstance(existing, dict) == last):
                raise TemplateError(
                    f"{'.'.join(parts[: i + 1])!r} is given both as a value and as a table"
                    f" (in {item!r})"
                )
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return result


# -- rendering ---------------------------------------------------------------------------


class _Node:
    """A rendered entry kept as a rope: text pieces and other nodes, joined only at the end.

    An entry used once stays a node inside its parent's, so a chain of entries that each
    hold the next costs memory linear in the output, not one growing copy per level. An
    entry used a second time is flattened to one string (``parts`` becomes that string
    alone), so every node is flattened at most once and shared nodes are never re-walked.
    """

    __slots__ = ("length", "parts")

    def __init__(self, parts: List[Union[str, _Node]], length: int) -> None:
        self.parts = parts
        self.length = length

    def text(self) -> str:
        """Flatten to one string (without recursion) and keep only that string."""
        if len(self.parts) == 1 and isinstance(self.parts[0], str):
            return self.parts[0]
        out: List[str] = []
        stack = [iter(self.parts)]
        while stack:
            for part in stack[-1]:
                if isinstance(part, str):
                    out.append(part)
                else:
                    stack.append(iter(part.parts))
                    break
            else:
                stack.pop()
        text = "".join(out)
        self.parts = [text]
        return text


class _Frame:
    """One template being filled: its entry name (``""`` for the caller's template)."""

    __slots__ = ("name", "out", "pieces", "pos", "sep")

    def __init__(self, name: str, pieces: Sequence[Piece], sep: str) -> None:
        self.name = name
        self.pieces = pieces
        self.sep = sep
        self.pos = 0
        self.out: List[Union[str, _Node]] = []

    def where(self) -> str:
        return f"entry {self.name!r}" if self.name else "template"

    def finish(self) -> _Node:
        """The frame's output as a node, refused when it passes ``MAX_RENDERED_CHARS``."""
        parts = self.out
        if self.sep and len(parts) > 1:
            parts = [self.sep] * (2 * len(parts) - 1)
            parts[::2] = self.out
        length = 0
        for part in parts:
            length += len(part) if isinstance(part, str) else part.length
        if length > MAX_RENDERED_CHARS:
            raise TemplateError(
                f"{self.where()} renders to more than {MAX_RENDERED_CHARS} characters"
            )
        return _Node(parts, length)


class _Renderer:
    """One render call: the memo of resolved entries and the missing names found so far."""

    def __init__(
        self,
        library: Optional[PromptLibrary],
        variables: Optional[Mapping[str, Any]],
        strict: bool,
    ) -> None:
        if variables is None:
            variables = {}
        elif not isinstance(variables, collections.abc.Mapping):
            raise TypeError(f"variables must be a mapping, not {type(variables).__name__}")
        self.library = library
        self.variables = variables
        self.strict = strict
        # Every name resolved to a string so far (variable, scalar, entry used twice).
        self.known: Dict[str, str] = {}
        # Entries rendered and used once so far: a second use flattens them into known.
        self.nodes: Dict[str, _Node] = {}
        self.missing: Dict[str, List[str]] = {}

    def run(self, name: Optional[str], pieces: Sequence[Piece]) -> str:
        """Render ``pieces`` (the entry ``name``, or the caller's template when ``None``)."""
        # Depth-first with an explicit stack: entries nest as deep as they like without
        # recursion, and ``active`` (entry -> stack index) spots a loop when one comes back.
        stack = [_Frame(name or "", pieces, "")]
        active: Dict[str, int] = {name: 0} if name else {}
        known = self.known
        while True:
            frame = stack[-1]
            # The hot loop: literal text and names already known, with local look-ups only.
            todo, append, pos, end = frame.pieces, frame.out.append, frame.pos, len(frame.pieces)
            child: Optional[_Frame] = None
            while pos < end:
                piece = todo[pos]
                pos += 1
                if isinstance(piece, str):
                    append(piece)
                    continue
                text = known.get(piece.name)
                if text is None:
                    text, child = self._resolve(piece, frame, stack, active)
                    if child is not None:
                        break
                append(text)
            frame.pos = pos
            if child is not None:
                active[child.name] = len(stack)
                stack.append(child)
                continue
            stack.pop()
            if not stack:
                self._raise_missing()
                return frame.finish().text()  # the caller's template has the cap too
            node = frame.finish()
            del active[frame.name]
            self.nodes[frame.name] = node
            stack[-1].out.append(node)

    def _resolve(
        self, piece: Placeholder, frame: _Frame, stack: List[_Frame], active: Dict[str, int]
    ) -> Tuple[str, Optional[_Frame]]:
        """Find a name not known yet: its text, or the frame of an entry to render first."""
        ref = piece.name
        node = self.nodes.pop(ref, None)
        if node is not None:  # an entry's second use: flatten it once, for every use
            flat = self.known[ref] = node.text()
            return flat, None
        library = self.library
        value = lookup(self.variables, ref)
        text = None if value is NOT_FOUND or value is None else variable_text(ref, value)
        if text is None and library is not None:
            text = library._values.get(ref)
        if text is not None:
            self.known[ref] = text
            return text, None
        if library is not None and ref in library._tables:
            raise table_error(ref, library._tables[ref], "entry")
        if ref in active:
            cycle = [f.name for f in stack[active[ref] :]]
            raise _cycle_error([*cycle, ref])
        if library is not None and (ref in library._texts or ref in library._lists):
            sep = "\n" if ref in library._lists else ""
            return "", _Frame(ref, library._entry_pieces(ref), sep)
        places = self.missing.setdefault(ref, [])
        if frame.where() not in places:
            places.append(frame.where())
        return ("" if self.strict else piece.raw), None

    def _raise_missing(self) -> None:
        if self.strict and self.missing:
            listed = ", ".join(f"{n} (in {', '.join(w)})" for n, w in self.missing.items())
            raise MissingVariableError(f"missing variables: {listed}", missing=list(self.missing))


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _join_pieces(names: Iterable[str]) -> List[Piece]:
    return [Placeholder(n, f"{{{{{n}}}}}") for n in names]


def _cycle_error(cycle: List[str]) -> TemplateCycleError:
    return TemplateCycleError(
        f"prompt entries refer to each other in a loop: {' -> '.join(cycle)}", cycle=cycle
    )
