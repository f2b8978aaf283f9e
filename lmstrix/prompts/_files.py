"""Reading prompt-library files: JSON everywhere, TOML with ``tomllib`` or ``tomli``, and
the formats plugins bring (:class:`PromptFormat`).

Private: :meth:`lmstrix.prompts.PromptLibrary.from_file` is the public face. Every
problem becomes a :class:`~lmstrix.errors.TemplateError`; a file that does not parse
gives a :class:`~lmstrix.errors.TemplateSyntaxError` with its line and column.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from ..errors import TemplateError
from ._parse import TemplateSyntaxError

__all__ = ["TOML_MISSING", "TOML_MODULES", "PromptFormat", "load_library_file", "toml_module"]

#: Modules tried in order for TOML; tests swap this tuple to simulate their absence.
TOML_MODULES: Tuple[str, ...] = ("tomllib", "tomli")
TOML_MISSING = "TOML needs Python 3.11+ or `pip install tomli`; or convert the file to JSON"

# tomllib/tomli end their messages with "(at line 3, column 9)" or "(at end of document)".
_TOML_WHERE_RE = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")


def toml_module() -> Optional[ModuleType]:
    """Return ``tomllib`` (3.11+) or ``tomli`` when importable, else ``None``."""
    for name in TOML_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


@dataclass(frozen=True)
class PromptFormat:
    """Another prompt-library file format, or template syntax (a plugin brings these).

    ``suffixes`` are the file suffixes it reads (``".yaml"``); ``load(text)`` turns a
    file's text into nested dicts (``None``: the text is JSON). ``convert(template)``,
    when given, rewrites each template of such a file from its own syntax into lmstrix's
    ``{{name}}`` placeholders (``None``: the templates are already in it).
    """

    name: str
    suffixes: Tuple[str, ...]
    load: Optional[Callable[[str], Any]] = None
    convert: Optional[Callable[[str], str]] = None


def load_library_file(path: str, formats: Sequence[PromptFormat] = ()) -> Dict[str, Any]:
    """Read and parse a ``.json`` or ``.toml`` prompt library into nested dicts, or a
    file of one of ``formats`` by its suffix.

    Raises:
        TemplateSyntaxError: the file is not valid UTF-8, JSON or TOML (file, line, column).
        TemplateError: the file cannot be read, its suffix is unknown, TOML is not
            available, the format's reader failed, or the top level is not a table.
    """
    suffix = os.path.splitext(path)[1].lower()
    extra = next((f for f in formats if suffix in (s.lower() for s in f.suffixes)), None)
    if extra is None and suffix not in (".json", ".toml"):
        known = ", ".join([".toml", ".json", *(s for f in formats for s in f.suffixes)])
        raise TemplateError(
            f"{path}: unsupported prompt library format {suffix or '(no suffix)'!r};"
            f" use a file ending in one of {known}"
        )
    module = toml_module() if suffix == ".toml" and extra is None else None
    if suffix == ".toml" and extra is None and module is None:
        raise TemplateError(f"{path}: {TOML_MISSING}")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise TemplateError(f"cannot read prompt library {path}: {exc.strerror or exc}") from exc
    text = _decode(path, data)
    if extra is not None:
        loaded = _load_other(path, text, extra)
    else:
        loaded = _load_json(path, text) if module is None else _load_toml(path, text, module)
    if not isinstance(loaded, dict):
        raise TemplateError(
            f"{path}: a prompt library must be a table of entries at the top level,"
            f" not {type(loaded).__name__}"
        )
    return loaded


def _load_other(path: str, text: str, fmt: PromptFormat) -> Any:
    if fmt.load is None:
        loaded = _load_json(path, text)
    else:
        try:
            loaded = fmt.load(text)
        except Exception as exc:  # a plugin's reader: any failure is the file's
            raise TemplateError(
                f"{path}: the {fmt.name} prompt format could not read it: {exc}"
            ) from exc
    return loaded if fmt.convert is None else _converted(loaded, fmt.convert)


def _converted(value: Any, convert: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return convert(value)
    if isinstance(value, dict):
        return {k: _converted(v, convert) for k, v in value.items()}
    if isinstance(value, list):
        return [_converted(v, convert) for v in value]
    return value


def _decode(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        colno = exc.start - data.rfind(b"\n", 0, exc.start)
        raise TemplateSyntaxError(
            f"{path}, line {lineno}, column {colno}: not valid UTF-8 text",
            source=path,
            lineno=lineno,
            colno=colno,
        ) from exc


def _too_deep(path: str, kind: str) -> TemplateSyntaxError:
    # The parsers recurse once per level: a file nested thousands of levels deep would
    # otherwise escape as a bare RecursionError (a library allows 100 levels anyway).
    return TemplateSyntaxError(
        f"{path}: invalid {kind}: tables or lists nested too deeply to read", source=path
    )


def _load_json(path: str, text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise _too_deep(path, "JSON") from exc
    except json.JSONDecodeError as exc:
        raise TemplateSyntaxError(
            f"{path}, line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}",
            source=path,
            lineno=exc.lineno,
            colno=exc.colno,
        ) from exc


def _load_toml(path: str, text: str, module: ModuleType) -> Any:
    try:
        return module.loads(text)
    except RecursionError as exc:
        raise _too_deep(path, "TOML") from exc
    except module.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_WHERE_RE.search(message)
        if match and match.group(1):
            lineno, colno = int(match.group(1)), int(match.group(2))
        else:  # "at end of document", or a message without a position
            lines = text.split("\n")
            lineno, colno = len(lines), len(lines[-1]) + 1
        detail = message[: match.start()] if match else message
        raise TemplateSyntaxError(
            f"{path}, line {lineno}, column {colno}: invalid TOML: {detail}",
            source=path,
            lineno=lineno,
            colno=colno,
        ) from exc
