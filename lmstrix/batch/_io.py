"""Files for :mod:`lmstrix.batch`: reading the input, and the crash-safe JSONL output.

The output is append-only JSON Lines with exactly one writer. Each record goes out as
one ``write()`` of a whole line, so a process killed at any moment leaves every line
whole except, at worst, the last one; :class:`OutputFile` finds such a torn last line
when it opens the file and cuts it off before appending. Standard library only.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
    Union,
)

from .._log import logger
from ..errors import ConfigError, TemplateError

if TYPE_CHECKING:
    from ..prompts._render import PromptLibrary

__all__ = [
    "JSONL_SUFFIXES",
    "OutputFile",
    "Prompter",
    "item_key",
    "read_items",
    "scan_output",
    "valid_id",
]

log = logger(__name__)

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json-lines", ".jsonlines", ".json")
"""Input files read as JSON Lines (one object per line); ``.csv`` is CSV; others are text."""

PathLike = Union[str, "os.PathLike[str]"]


def item_key(item_id: Any) -> str:
    """The identity of an item id: ``5`` and ``"5"`` are the same item."""
    return str(item_id)


def valid_id(item_id: Any) -> bool:
    """True for the ids an item may have: a non-empty string or an integer."""
    if isinstance(item_id, bool):
        return False
    return isinstance(item_id, int) or (isinstance(item_id, str) and item_id != "")


# ---------------------------------------------------------------------------- input


def read_items(path: PathLike) -> Iterator[Dict[str, Any]]:
    """Stream the items of a batch input file, one dict per item.

    * ``.jsonl`` (also ``.ndjson``, ``.json-lines``, ``.jsonlines``, ``.json``): one JSON
      object per non-blank line; an object without ``"id"`` gets ``"line-N"``.
    * ``.csv``: a header row, then one item per row; the columns are the item's fields
      (``prompt``, or template variables); without an ``id`` column the id is the row
      number (1 for the first row after the header).
    * anything else: one prompt per non-empty line; the id is the line number.

    The file is opened at once (so a missing file is reported here) and read lazily.

    Raises:
        ConfigError: the file cannot be read, or a line is not valid (the message names
            the file and the line).
    """
    name = os.fspath(path)
    try:
        handle = open(name, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by the generator
    except OSError as exc:
        raise ConfigError(f"cannot read the batch input {name}: {exc.strerror or exc}") from exc
    suffix = os.path.splitext(name)[1].lower()
    if suffix in JSONL_SUFFIXES:
        return _guarded(handle, name, _jsonl_items(handle, name))
    if suffix == ".csv":
        return _guarded(handle, name, _csv_items(handle, name))
    return _guarded(handle, name, _text_items(handle))


def _guarded(
    handle: IO[str], name: str, items: Iterator[Dict[str, Any]]
) -> Iterator[Dict[str, Any]]:
    """Close ``handle`` when done; turn decoding and I/O errors into :class:`ConfigError`."""
    with handle:
        try:
            yield from items
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{name}: not valid UTF-8 text (byte {exc.start} of a read block): save "
                "the file as UTF-8"
            ) from exc
        except OSError as exc:
            raise ConfigError(f"cannot read the batch input {name}: {exc}") from exc


def _jsonl_items(handle: IO[str], name: str) -> Iterator[Dict[str, Any]]:
    for lineno, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise ConfigError(
                f"{name}, line {lineno}: not valid JSON ({exc}); each line must hold one "
                "JSON object"
            ) from exc
        if not isinstance(item, dict):
            raise ConfigError(
                f"{name}, line {lineno}: expected a JSON object, got {type(item).__name__} "
                "(a .jsonl file holds one object per line, not one array)"
            )
        if item.get("id") is None:
            item["id"] = f"line-{lineno}"
        elif not valid_id(item["id"]):
            raise ConfigError(
                f"{name}, line {lineno}: 'id' must be a non-empty string or an integer, "
                f"not {item['id']!r}"
            )
        yield item


def _csv_items(handle: IO[str], name: str) -> Iterator[Dict[str, Any]]:
    reader = csv.reader(handle, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        columns = [c.strip() for c in header]
        named = [c for c in columns if c]
        if len(set(named)) != len(named):
            dupes = sorted({c for c in named if named.count(c) > 1})
            raise ConfigError(f"{name}, line 1: duplicate column(s) {', '.join(dupes)}")
        has_id = "id" in columns
        rownum = 0
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            rownum += 1
            if len(row) > len(columns) and any(c.strip() for c in row[len(columns) :]):
                raise ConfigError(
                    f"{name}, line {reader.line_num}: {len(row)} fields but the header "
                    f"has {len(columns)} columns"
                )
            cells = row + [""] * (len(columns) - len(row))
            item: Dict[str, Any] = {c: v for c, v in zip(columns, cells) if c}
            if has_id:
                if not item["id"].strip():
                    raise ConfigError(f"{name}, line {reader.line_num}: the 'id' cell is empty")
            else:
                item["id"] = rownum
            yield item
    except csv.Error as exc:
        raise ConfigError(f"{name}, line {reader.line_num}: bad CSV ({exc})") from exc


def _text_items(handle: IO[str]) -> Iterator[Dict[str, Any]]:
    for lineno, line in enumerate(handle, 1):
        prompt = line.rstrip("\r\n")
        if prompt.strip():
            yield {"id": lineno, "prompt": prompt}


class Prompter:
    """Turns an item into chat messages: its prompt, its messages, or a rendered template.

    ``template`` names an entry of ``library`` (a ``PromptLibrary`` or the path of one);
    without a library it is the template text itself.

    Raises:
        ConfigError: the template is not in the library, or is neither a name nor a text
            with placeholders; :meth:`messages`: the item has nothing valid to send.
    """

    def __init__(
        self,
        template: Optional[str],
        library: Union[PromptLibrary, str, os.PathLike[str], None],
    ) -> None:
        from ..prompts._render import PromptLibrary

        self.template = template
        self.library: Optional[PromptLibrary] = None
        if library is not None and not isinstance(library, PromptLibrary):
            library = PromptLibrary.from_file(library)
        if template is None:
            return
        if library is not None:
            if template not in library:
                raise ConfigError(
                    f"no template {template!r} in the prompt library"
                    f"{' ' + library.path if library.path else ''}; it has: "
                    f"{', '.join(library.names()) or 'nothing'}"
                )
            self.library = library
        elif "{{" not in template:
            raise ConfigError(
                f"template {template!r} is neither a name in a prompt library (pass "
                "library= or --prompts FILE) nor a text with {{placeholders}}"
            )

    def messages(self, item: Mapping[str, Any], where: str) -> List[Mapping[str, Any]]:
        """The chat messages for ``item``; ``where`` names it in error messages."""
        if self.template is not None:
            from ..prompts._render import render

            given = item.get("vars")
            if isinstance(given, Mapping):
                variables = dict(given)
            else:
                variables = {k: v for k, v in item.items() if k != "id"}
            try:
                if self.library is not None:
                    text = self.library.render(self.template, variables)
                else:
                    text = render(self.template, variables)
            except TemplateError as exc:
                raise ConfigError(f"{where}: {exc}") from exc
            return [{"role": "user", "content": text}]
        messages = item.get("messages")
        if messages is not None:
            if not (
                isinstance(messages, list)
                and messages
                and all(isinstance(m, Mapping) and "role" in m for m in messages)
            ):
                raise ConfigError(
                    f"{where}: 'messages' must be a non-empty list of {{role, content}} objects"
                )
            return messages
        prompt = item.get("prompt")
        if isinstance(prompt, str):
            return [{"role": "user", "content": prompt}]
        raise ConfigError(
            f"{where}: nothing to send: give it a 'prompt' (text) or 'messages', or run "
            "the batch with a template"
        )


# ---------------------------------------------------------------------------- output


def scan_output(path: PathLike) -> Tuple[Set[str], int, int]:
    """Read an output file: the keys of its complete records, and where they end.

    Returns ``(keys, good_end, size)``: ``good_end`` is the byte offset just after the
    last complete line; when it is less than ``size`` the last line is torn (no final
    newline, or not a JSON object) and should be cut off. A missing file is empty.

    Raises:
        ConfigError: a line *before* the last one is not a JSON object: the file was
            damaged or not written by ``lmstrix batch``; it is left untouched.
    """
    name = os.fspath(path)
    keys: Set[str] = set()
    offset = 0
    bad: Optional[Tuple[int, int]] = None  # (line number, start offset) of a bad line
    try:
        handle = open(name, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return keys, 0, 0
    except OSError as exc:
        raise ConfigError(f"cannot read the batch output {name}: {exc}") from exc
    with handle:
        for lineno, raw in enumerate(handle, 1):
            if bad is not None:
                raise ConfigError(
                    f"{name}, line {bad[0]}: not a complete JSON record, and more lines "
                    "follow it; the file was damaged or not written by lmstrix batch. "
                    "Fix or remove that line, or write to another file"
                )
            record = _record(raw)
            if record is None:
                bad = (lineno, offset)
            elif isinstance(record, dict) and valid_id(record.get("id")):
                keys.add(item_key(record["id"]))
            offset += len(raw)
    if bad is not None:
        return keys, bad[1], offset
    return keys, offset, offset


def _record(raw: bytes) -> Optional[Any]:
    """The parsed line, ``{}`` for a blank line, ``None`` when torn or not an object."""
    if not raw.endswith(b"\n"):
        return None
    if not raw.strip():
        return {}
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class OutputFile:
    """The batch output: opened once by its single writer, locked, repaired, appended to.

    :meth:`open` takes an exclusive lock (POSIX ``flock``; none on Windows), scans the
    file, cuts off a torn last line, and returns the keys already written.
    :meth:`write` appends one record as one ``write()`` of a whole line; if it fails
    part-way the file is cut back to the last whole line. :meth:`sync` is ``fsync``.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = os.fspath(path)
        self._fd: Optional[int] = None
        self._good = 0
        self._dirty = False

    def open(self) -> Set[str]:
        """Lock, scan and repair the file; return the keys of the records it holds.

        Raises:
            ConfigError: the file cannot be opened, another batch is writing it, or it is
                damaged before its last line.
        """
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"cannot open the batch output {self.path}: {exc.strerror or exc}"
            ) from exc
        try:
            if not _try_lock(fd):
                raise ConfigError(
                    f"another batch is writing {self.path}; wait for it to finish or write "
                    "to another file"
                )
            keys, good, size = scan_output(self.path)
            if good < size:
                log.warning(
                    "%s: cutting off a torn last line (%d bytes) left by an interrupted run",
                    self.path,
                    size - good,
                )
                os.ftruncate(fd, good)
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._good = fd, good
        return keys

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line, in one ``write()`` (looping only on a short write)."""
        if self._fd is None:
            raise ValueError(f"{self.path} is not open")
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, view[written:])
        except BaseException:
            # A line is whole or absent: never leave a torn line behind this process.
            if written:
                os.ftruncate(self._fd, self._good)
            raise
        self._good += len(data)
        self._dirty = True

    def sync(self) -> None:
        """Make the lines written so far durable (``fsync``); cheap when nothing is new."""
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        """Sync, unlock and close (safe to call twice)."""
        fd = self._fd
        if fd is None:
            return
        try:
            self.sync()
        finally:
            self._fd = None
            os.close(fd)  # closing the descriptor drops the lock


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only

    def _try_lock(fd: int) -> bool:
        # msvcrt locks are mandatory and would block readers of the output; a second
        # writer is not detected on Windows.
        return True

else:
    from ..registry._filelock import _try_lock
