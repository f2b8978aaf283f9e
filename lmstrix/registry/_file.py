"""The registry file format: parse (with migrations and precise errors) and dump.

Schema 1::

    {"schema": 1,
     "servers": {"http://localhost:1234": {"models": {"qwen/qwen3-4b": {...record...}}}}}

Schema 0 is the unversioned pre-release layout ``{"models": {key: record}}``, with each
record's server in the record (else the registry's default server); it is migrated in
memory and written back as schema 1. A file without ``"schema"`` is read as schema 0
only when it has that shape (``"models"`` and no ``"servers"``); any other file without
it is refused as corrupt, since reading it as schema 0 would drop its records on the
next write. Keys this version does not know are kept at every level and written back
unchanged. A record field of the wrong type is refused too, naming the server, the
model and the field.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

from ..config import DEFAULT_BASE_URL, normalize_base_url
from ..errors import ConfigError, RegistryCorruptError, RegistryError
from ._records import ModelRecord, RecordFieldError

__all__ = [
    "DEFAULT_SERVER",
    "SCHEMA_VERSION",
    "Document",
    "dump_document",
    "normalize_server",
    "parse_document",
]

SCHEMA_VERSION = 1
"""The newest registry file schema this version of lmstrix reads and writes."""


DEFAULT_SERVER = DEFAULT_BASE_URL
"""The server scope used when neither an argument nor ``LMSTRIX_SERVER`` names one."""


def normalize_server(url: str) -> str:
    """Return the canonical form of a server URL, used as the registry's scope key.

    The same rules as the client's base URL (:func:`lmstrix.config.normalize_base_url`):
    scheme and host lower-cased, ``http://`` added when missing, credentials, query,
    trailing ``/`` and an API suffix (``/v1``, ``/api/v0``, ``/api/v1``) dropped, so every
    spelling of one server shares its records.

    >>> normalize_server("HTTP://LocalHost:1234/")
    'http://localhost:1234'
    >>> normalize_server("localhost:1234/v1")
    'http://localhost:1234'
    >>> normalize_server("https://user:secret@Box.lan/lmstudio/")
    'https://box.lan/lmstudio'

    Raises:
        ConfigError: the URL is empty or not http(s).
    """
    return normalize_base_url(url)


class Document:
    """A parsed registry file: records by server then key, plus keys kept for newer versions."""

    def __init__(self) -> None:
        self.servers: Dict[str, Dict[str, ModelRecord]] = {}
        self.server_extra: Dict[str, Dict[str, Any]] = {}
        self.extra: Dict[str, Any] = {}


def parse_document(data: bytes, path: Path, default_server: str) -> Document:
    """Parse the bytes of a registry file.

    Raises:
        RegistryCorruptError: not UTF-8 JSON of the expected shape; names line and column.
        RegistryError: the file was written by a newer lmstrix (newer schema).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _position(data[: exc.start].decode("utf-8", "replace"), exc.start)
        raise _corrupt(path, "the file is not UTF-8 text", line, col) from exc
    try:
        top = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _corrupt(path, f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from exc
    if not isinstance(top, dict):
        line, col = _position(text, len(text) - len(text.lstrip()))
        raise _corrupt(path, "the top level must be a JSON object", line, col)
    if "schema" not in top and ("models" not in top or "servers" in top):
        line, col = _position(text, len(text) - len(text.lstrip()))
        raise _corrupt(
            path,
            "the top-level 'schema' key is missing (a registry file starts with "
            '\'"schema": 1\'; only the old schema-0 layout, with "models" and no "servers", '
            "may leave it out)",
            line,
            col,
        )
    schema = top.get("schema", 0)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 0:
        line, col = _locate(text, ("schema",))
        raise _corrupt(path, f"'schema' must be a whole number, not {schema!r}", line, col)
    if schema > SCHEMA_VERSION:
        raise RegistryError(
            f"the registry file {path} uses schema {schema}, but this version of lmstrix "
            f"reads schema {SCHEMA_VERSION} at most: upgrade lmstrix "
            "(pip install --upgrade lmstrix). The file was left untouched."
        )
    doc = Document()
    if schema == 0:
        _parse_v0(doc, top, text, path, default_server)
    else:
        _parse_v1(doc, top, text, path)
    return doc


def _parse_v0(
    doc: Document, top: Dict[str, Any], text: str, path: Path, default_server: str
) -> None:
    models = _mapping(top, "models", text, path, ())
    doc.extra = {k: v for k, v in top.items() if k not in ("schema", "models")}
    for key, raw in models.items():
        _check_record(raw, text, path, ("models", key))
        server = raw.get("server")
        try:
            scope = (
                normalize_server(server) if isinstance(server, str) and server else default_server
            )
        except ConfigError:
            scope = default_server
        doc.servers.setdefault(scope, {})[key] = _record(raw, key, scope, text, path, ("models",))


def _parse_v1(doc: Document, top: Dict[str, Any], text: str, path: Path) -> None:
    servers = _mapping(top, "servers", text, path, ())
    doc.extra = {k: v for k, v in top.items() if k not in ("schema", "servers")}
    for url, entry in servers.items():
        where: Tuple[str, ...] = ("servers", url)
        if not isinstance(entry, dict):
            line, col = _locate(text, where)
            raise _corrupt(path, f"server {url!r} must map to an object", line, col)
        try:
            scope = normalize_server(url)
        except ConfigError as exc:
            line, col = _locate(text, where)
            raise _corrupt(path, f"{url!r} is not a server URL", line, col) from exc
        models = _mapping(entry, "models", text, path, where)
        extra = {k: v for k, v in entry.items() if k != "models"}
        if extra:
            doc.server_extra.setdefault(scope, {}).update(extra)
        target = doc.servers.setdefault(scope, {})
        for key, raw in models.items():
            _check_record(raw, text, path, (*where, "models", key))
            target[key] = _record(raw, key, scope, text, path, (*where, "models"))


def _mapping(
    parent: Mapping[str, Any], name: str, text: str, path: Path, where: Tuple[str, ...]
) -> Dict[str, Any]:
    value = parent.get(name, {})
    if not isinstance(value, dict):
        line, col = _locate(text, (*where, name))
        raise _corrupt(path, f"{'.'.join((*where, name))!r} must be an object", line, col)
    return value


def _check_record(raw: Any, text: str, path: Path, where: Tuple[str, ...]) -> None:
    if not isinstance(raw, dict):
        line, col = _locate(text, where)
        raise _corrupt(path, f"the record of model {where[-1]!r} must be an object", line, col)


def _record(
    raw: Dict[str, Any], key: str, scope: str, text: str, path: Path, where: Tuple[str, ...]
) -> ModelRecord:
    try:
        record = ModelRecord.from_dict(raw)
    except RecordFieldError as exc:
        # Locate the record's own member (a probe's field: the record's "probes").
        line, col = _locate(text, (*where, key, exc.field.split("[")[0]))
        raise _corrupt(
            path, f"the record of model {key!r} on server {scope}: {exc}", line, col
        ) from exc
    # The record's place in the file is the truth; copies inside it only help readers.
    if record.key != key or record.server != scope:
        record = dataclasses.replace(record, key=key, server=scope)
    return record


def dump_document(doc: Document, path: Path) -> bytes:
    """Serialise ``doc`` as indented, key-sorted UTF-8 JSON (schema 1), one probe a line.

    Raises:
        RegistryError: a value cannot be stored as JSON (NaN, infinity, a set...).
    """
    servers: Dict[str, Any] = {}
    for url in set(doc.servers) | set(doc.server_extra):
        models = doc.servers.get(url, {})
        extra = doc.server_extra.get(url, {})
        if models or extra:
            entry = dict(extra)
            entry["models"] = {key: record.to_dict() for key, record in models.items()}
            servers[url] = entry
    top = dict(doc.extra)
    top["schema"] = SCHEMA_VERSION
    top["servers"] = servers
    try:
        text = _pretty(top, "")
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"cannot save to the registry file {path}: {exc}") from exc
    return (text + "\n").encode("utf-8")


# Scalars and flat objects go through the C encoder, which json.dumps only uses without
# ``indent``; the pure-Python indenting encoder made big registries slow to save.
_FLAT = json.JSONEncoder(sort_keys=True, ensure_ascii=False, allow_nan=False)


def _is_flat(value: Any) -> bool:
    if isinstance(value, dict):
        return not any(isinstance(v, (dict, list)) for v in value.values())
    return not isinstance(value, list)


def _pretty(value: Any, indent: str) -> str:
    """Encode like ``json.dumps(indent=2, sort_keys=True)``, but with each flat object of
    a list (a probe, say) on one line."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, not {key!r}")
        items = sorted(value.items())
        body = ",\n".join(f"{inner}{_FLAT.encode(k)}: {_pretty(v, inner)}" for k, v in items)
        return f"{{\n{body}\n{indent}}}"
    if isinstance(value, list) and value:
        if all(_is_flat(v) for v in value):
            body = ",\n".join(inner + _FLAT.encode(v) for v in value)
        else:
            body = ",\n".join(inner + _pretty(v, inner) for v in value)
        return f"[\n{body}\n{indent}]"
    return _FLAT.encode(value)


def _position(text: str, offset: int) -> Tuple[int, int]:
    """Return the 1-based line and column of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _locate(text: str, keys: Tuple[str, ...]) -> Tuple[int, int]:
    """Return the best position of the member ``keys[0]`` → ... → ``keys[-1]`` in ``text``.

    Finds each key as an object member after the previous one; good for the files lmstrix
    writes (and most hand-edited ones). Falls back to the last key found, else 1:1.
    """
    offset, found = 0, 0
    for key in keys:
        spellings = {json.dumps(key), json.dumps(key, ensure_ascii=False)}
        pattern = "|".join(re.escape(s) for s in spellings)
        match = re.compile(rf"(?:{pattern})\s*:").search(text, offset)
        if match is None:
            break
        found, offset = match.start(), match.end()
    return _position(text, found)


def _corrupt(path: Path, problem: str, line: int, col: int) -> RegistryCorruptError:
    backup = path.with_name(path.name + ".bak")
    where = f"line {line}, column {col}" if line else "an unknown position"
    if backup.is_file():
        advice = (
            f"The last good copy is {backup}. To restore it, rename the damaged file "
            f"(for example to {path.name}.broken) and copy {backup.name} to {path.name}; "
            f"or fix the file by hand at the position shown."
        )
    else:
        advice = (
            f"No backup exists ({backup.name} is missing): fix the file by hand at the "
            "position shown, or rename it to start an empty registry."
        )
    return RegistryCorruptError(
        f"the registry file {path} is corrupt at {where}: {problem}. lmstrix has left it "
        f"untouched and will not write to it. {advice}",
        path=str(path),
        lineno=line,
        colno=col,
    )
