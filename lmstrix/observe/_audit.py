"""A tamper-evident audit log of model calls: hash-chained JSON lines, safe across processes.

Each line is one JSON object for one call. It carries ``prev``, the ``hash`` of the line
before it (64 zeros for the first line), and ends with its own ``hash``: the SHA-256 of
the line's bytes before it, closed with ``}`` (the line as written, without
``,"hash":"..."``). Editing any byte of a line breaks its own hash; removing or
reordering lines breaks the ``prev`` link of the line after.
Cutting lines off the end leaves a valid, shorter chain: keep the last ``head`` that
:func:`verify_audit_log` reports somewhere else and pass it as ``expected_head`` to catch
that too.

Appending takes a thread lock and a cross-process lock on ``<path>.lock`` (the same lock
the registry's :class:`~lmstrix.registry._filelock.FileLock` takes), chains to the last
line's hash and appends the new line with one ``write``, so processes and threads sharing
one file keep one unbroken chain. The file and the lock file stay open between appends,
and the last hash is read from the file again only when another writer appended since
(the file's size tells). A line is written before the call returns, so a killed process
loses nothing; ``fsync=True`` also flushes each line to the disk (a power cut then loses
nothing either), at the cost of a disk flush per call.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple, Union

from .._closing import ClosedByWith
from .._compactjson import compact
from .._forks import generation
from ..registry._filelock import hold_lock, release_lock

if TYPE_CHECKING:
    from ..client._calls import CallEvent

__all__ = ["GENESIS", "AuditLog", "AuditVerification", "verify_audit_log"]


GENESIS = "0" * 64
"""The ``prev`` of the first line."""

# Parameter names whose values are never written (at any depth): api_key, access_token...
# (but not max_tokens).
_SECRET = re.compile(
    r"(^|[_\-])(api_?key|key|token|secret|password|passwd|authori[sz]ation|cookie|bearer)$", re.I
)
_TAIL_CHUNK = 4096
_LINES_TRIED = 16  # lines without a hash skipped, at most, to find the last hash


_HASH_KEY = b',"hash":"'


def _sealed(line: Mapping[str, Any]) -> Tuple[str, bytes]:
    """``line`` (which has a ``prev``) as written: its hash, and its bytes ending with it.

    One serialisation: the hash covers the bytes of ``{...}``, and the line is the same
    bytes with ``,"hash":"<hex>"`` put before the closing brace.
    """
    body = compact(line).encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()
    return digest, body[:-1] + _HASH_KEY + digest.encode("ascii") + b'"}'


def _digest_matches(raw: bytes, line: Mapping[str, Any]) -> bool:
    """True when ``line`` (parsed from ``raw``, one line without its newline) is intact."""
    found = str(line["hash"])
    suffix = _HASH_KEY + found.encode("utf-8") + b'"}'
    if not raw.endswith(suffix):
        return False  # the hash is always the last field
    return hashlib.sha256(raw[: -len(suffix)] + b"}").hexdigest() == found


@functools.lru_cache(maxsize=4)
def _iso_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _iso_time(timestamp: float) -> str:
    """``timestamp`` as ISO 8601 UTC with milliseconds (``2026-12-06T16:00:00.123Z``)."""
    second = math.floor(timestamp)
    return f"{_iso_second(second)}.{int((timestamp - second) * 1000):03d}Z"


@functools.lru_cache(maxsize=1024)
def _is_secret(name: str) -> bool:
    return _SECRET.search(name) is not None


_PLAIN_TYPES = frozenset((str, int, float, bool, type(None)))


def _redacted(value: Any) -> Any:
    if type(value) in _PLAIN_TYPES:  # the usual case first: a setting's plain value
        return value
    if isinstance(value, Mapping):
        return {
            str(k): "[redacted]" if _is_secret(str(k)) else _redacted(v) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


class AuditLog(ClosedByWith):
    """An observer writing one hash-chained JSON line per call to ``path``.

    A line holds ``time`` (ISO 8601, UTC, when the call started), ``label``, ``server``,
    ``model``, ``served_model``, ``operation``, ``stream``, ``parameters`` (the
    request's settings; any whose name suggests a secret is written as ``[redacted]``),
    ``usage`` (prompt, completion and total tokens), ``outcome``, ``error`` (its class
    and HTTP status, never its message), ``duration_s`` and ``time_to_first_token_s``,
    then ``prev`` and ``hash``. The API token is never in a :class:`CallEvent`, so it
    never reaches the file.

    ``content=True`` adds ``content``: ``input`` (a chat's messages, a completion's
    prompt, an embedding's texts), ``output`` (the answer) and ``reasoning``. A context
    search's line has ``result`` (its limits, loads and requests).
    """

    def __init__(
        self,
        path: Union[str, os.PathLike[str]],
        content: bool = False,
        label: Optional[str] = None,
        *,
        fsync: bool = False,
        lock_timeout_s: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.content = content
        self.label = label
        self.fsync = fsync
        self.lock_timeout_s = lock_timeout_s
        self._lock = threading.Lock()
        self._files: Optional[_OpenFiles] = None
        self._tail: Optional[Tuple[int, str]] = None  # (file size, last hash) after our write

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r}, content={self.content}, label={self.label!r})"

    @property
    def capture_content(self) -> bool:
        """Whether calls should hand this observer their content (``content=True``)."""
        return self.content

    def close(self) -> None:
        """Close the file (the next line opens it again)."""
        with self._lock:
            files, self._files, self._tail = self._files, None, None
        if files is not None:
            files.close()

    def __call__(self, event: CallEvent) -> None:
        """Append the line of one finished call."""
        self.append(self.record(event))

    def record(self, event: CallEvent) -> Dict[str, Any]:
        """The fields of ``event``'s line (without ``prev`` and ``hash``)."""
        usage = event.usage
        error: Optional[Dict[str, Any]] = None
        if event.error is not None:
            error = {
                "type": type(event.error).__name__,
                "status": getattr(event.error, "status_code", None),
            }
        record: Dict[str, Any] = {
            "time": _iso_time(event.started_at),
            "label": self.label,
            "server": event.server,
            "model": event.model,
            "served_model": event.served_model,
            "operation": event.operation,
            "stream": event.stream,
            "parameters": _redacted(event.parameters),
            "usage": None if usage is None else usage.to_dict(),
            "outcome": event.outcome,
            "error": error,
            "duration_s": round(event.total_s, 6),
            "time_to_first_token_s": event.time_to_first_token_s,
        }
        if event.result:
            record["result"] = _redacted(dict(event.result))
        if self.content:
            found = event.content
            record["content"] = (
                None
                if found is None
                else {
                    "input": _redacted(found.input),
                    "output": found.output,
                    "reasoning": found.reasoning,
                }
            )
        return record

    def append(self, record: Mapping[str, Any]) -> str:
        """Chain ``record`` to the file's last line and append it; returns its hash."""
        line = {k: v for k, v in record.items() if k != "hash"}
        with self._lock:
            files, end = self._locked()
            try:
                tail = self._tail
                if tail is not None and tail[0] == end:
                    line["prev"], torn = tail[1], False  # nobody appended since our line
                else:
                    line["prev"], torn = _last_hash(files.fd)
                digest, data = _sealed(line)
                # A line cut by a crash: end it (verification will name it).
                data = (b"\n" if torn else b"") + data + b"\n"
                _write_all(files.fd, data)
                if self.fsync:
                    os.fsync(files.fd)
                self._tail = (end + len(data), digest)
            except BaseException:
                self._tail = None
                raise
            finally:
                release_lock(files.lock_fd)
        return digest

    def _locked(self) -> Tuple[_OpenFiles, int]:
        """The open file and lock file with the lock taken, and the file's size.

        They are opened again after a fork, and when the file at ``path`` was moved away
        or removed (log rotation): one ``stat`` of ``path`` under the lock tells both
        that it is still our file and how long it is.
        """
        files = self._files
        if files is not None and files.generation != generation():
            files.close()
            files = self._files = self._tail = None
        if files is not None:
            hold_lock(files.lock_fd, files.lock_path, self.lock_timeout_s)
            size = files.size_if_current(self.path)
            if size is not None:
                return files, size
            release_lock(files.lock_fd)
            files.close()
            self._files = self._tail = None
        files = self._files = _OpenFiles(self.path)
        hold_lock(files.lock_fd, files.lock_path, self.lock_timeout_s)
        return files, os.fstat(files.fd).st_size


class _OpenFiles:
    """The audit file (append mode) and its lock file, held open by one process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_path = path.with_name(path.name + ".lock")
        self.generation = generation()
        self.fd = os.open(str(path), os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.lock_fd = os.open(str(self.lock_path), os.O_RDWR | os.O_CREAT, 0o644)
        except BaseException:
            os.close(self.fd)
            raise
        self.inode = os.fstat(self.fd).st_ino

    def size_if_current(self, path: Path) -> Optional[int]:
        """The size of the file at ``path`` when it is still the open file, else ``None``.

        (A forked child must open its own files: a lock taken through an inherited
        descriptor would be the parent's lock too. The caller checks the process.)
        """
        try:
            found = os.stat(str(path))
        except OSError:
            return None
        return found.st_size if found.st_ino == self.inode else None

    def close(self) -> None:
        for fd in (self.fd, self.lock_fd):
            with contextlib.suppress(OSError):  # closed already (after a fork, say)
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _last_hash(fd: int) -> Tuple[str, bool]:
    """The ``hash`` of the file's last line that has one (``GENESIS`` if none among the
    last few), and whether the file ends in a torn line (no newline)."""
    end = os.lseek(fd, 0, os.SEEK_END)
    if end == 0:
        return GENESIS, False
    os.lseek(fd, end - 1, os.SEEK_SET)
    torn = os.read(fd, 1) != b"\n"
    tail, position, tried = b"", end, 0
    while position > 0 and tried < _LINES_TRIED:
        step = min(_TAIL_CHUNK, position)
        position -= step
        os.lseek(fd, position, os.SEEK_SET)
        tail = os.read(fd, step) + tail
        # Every line after the first newline in the buffer is whole (all of them at the start).
        first, _, rest = tail.partition(b"\n") if position else (b"", b"", tail)
        lines = rest.split(b"\n")
        for raw in reversed(lines[:-1] if not lines[-1] else lines):
            found = _hash_of(raw)
            if found is not None:
                return found, torn
            tried += 1
        tail = first if position else b""
    return GENESIS, torn


def _hash_of(raw: bytes) -> Optional[str]:
    try:
        line = json.loads(raw.decode("utf-8"))
    except ValueError:
        return None  # a torn or foreign line: chain to the last good one before it
    found = line.get("hash") if isinstance(line, dict) else None
    return found if isinstance(found, str) else None


@dataclass(frozen=True)
class AuditVerification:
    """What :func:`verify_audit_log` found.

    ``ok`` is true when every line is intact and linked; otherwise ``bad_line`` is the
    1-based number of the first bad line and ``reason`` says what is wrong with it.
    ``lines`` counts the lines read, ``head`` is the last good line's hash (keep it to
    detect lines cut off the end later).
    """

    ok: bool
    lines: int
    head: str
    bad_line: Optional[int] = None
    reason: Optional[str] = None

    def __bool__(self) -> bool:
        return self.ok


def verify_audit_log(
    path: Union[str, os.PathLike[str]], *, expected_head: Optional[str] = None
) -> AuditVerification:
    """Check an audit file's chain: names the first edited, removed or reordered line.

    ``expected_head``, a ``head`` reported earlier, must be the hash of some line of the
    file; if not, lines were cut off the end (or the file replaced).

    Raises:
        OSError: the file cannot be read.
    """
    prev = GENESIS
    seen_head = expected_head is None
    number = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            problem = _line_problem(raw, prev)
            if problem is not None:
                return AuditVerification(False, number, prev, number, problem)
            prev = json.loads(raw)["hash"]
            seen_head = seen_head or prev == expected_head
    if not seen_head:
        reason = f"the expected head {expected_head} is in no line: lines were cut off the end"
        return AuditVerification(False, number, prev, number + 1, reason)
    return AuditVerification(True, number, prev)


def _line_problem(raw: bytes, prev: str) -> Optional[str]:
    if not raw.endswith(b"\n"):
        return "the line is cut short (no newline at the end of the file)"
    try:
        line = json.loads(raw.decode("utf-8"))
    except ValueError:
        return "the line is not JSON"
    if not isinstance(line, dict) or not isinstance(line.get("hash"), str):
        return "the line has no hash"
    if not _digest_matches(raw.rstrip(b"\r\n"), line):
        return "the line was edited (its hash does not match its content)"
    if line.get("prev") != prev:
        return "the chain is broken: a line before it was removed, or lines were reordered"
    return None
