"""`ResponseCache`: a middleware that answers repeated deterministic requests from SQLite.

The key is a SHA-256 of the server, the endpoint, the model, the context the model was
last seen loaded with through this cache (when known), whether the answer is streamed,
and the canonical request body (sorted JSON, without ``stream`` and ``stream_options``).
Headers are never part of the key nor stored, so the API token never reaches the file.

Only deterministic requests are cached by default: embeddings, and chat or completion
requests with ``temperature`` 0 or a fixed ``seed``. A stream is stored as the raw SSE
bytes once it ended with ``[DONE]``, and a hit replays them as a response whose
``iter_bytes`` yields them, so the client's own stream code decodes the replay.

A miss does not wait for the answer to be written: it is queued, served from memory by
this object until written, and written with the others queued meanwhile in one
transaction by a background thread (:mod:`lmstrix.cache._writebehind`).
:meth:`ResponseCache.flush` waits for the writes; ``len()``,
:meth:`~ResponseCache.size_bytes`, :meth:`~ResponseCache.clear` and
:meth:`~ResponseCache.close` flush first.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sqlite3
import threading
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)
from urllib.parse import urlsplit

from .._compactjson import canonical
from .._log import logger
from ..errors import LMStrixError
from ..middleware._store import SQLiteFile
from ..transport._request import OPERATION
from ..transport._stdlib import BufferedResponse
from ..types import LoadedInstance
from ._writebehind import WriteBehind

if TYPE_CHECKING:
    from os import PathLike

    from ..middleware import CallNext
    from ..transport._request import Request
    from ..transport._stdlib import Response

__all__ = ["CacheStats", "ResponseCache"]

log = logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created);
CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER);
INSERT OR IGNORE INTO totals VALUES (0, 0);
CREATE TRIGGER IF NOT EXISTS responses_added AFTER INSERT ON responses
BEGIN UPDATE totals SET bytes = bytes + NEW.size WHERE id = 0; END;
CREATE TRIGGER IF NOT EXISTS responses_removed AFTER DELETE ON responses
BEGIN UPDATE totals SET bytes = bytes - OLD.size WHERE id = 0; END;
"""

_FILE_ERRORS = (sqlite3.Error, OSError)
_CACHED_OPERATIONS = frozenset(("chat", "completion", "embedding"))
_SSE = "text/event-stream"
_ERROR_EVENT = re.compile(rb'^(event: *error|data: *\{"error")', re.MULTILINE)
_JSON = "application/json"
_Entry = Tuple[str, float, str, bytes]  # key, created, content type, body


class CacheStats:
    """Counts of one :class:`ResponseCache` object (this process): hits, misses, stores.

    ``stores`` counts answers written to the file, which happens shortly after the miss
    (:meth:`ResponseCache.flush` waits for it).
    """

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.stores = 0
        self.skipped = 0  # requests the cache does not handle (not deterministic, ...)

    def __repr__(self) -> str:
        return (
            f"CacheStats(hits={self.hits}, misses={self.misses}, "
            f"stores={self.stores}, skipped={self.skipped})"
        )


def is_deterministic(body: Mapping[str, Any], operation: str) -> bool:
    """True for an embedding, or a request with ``temperature`` 0 or a fixed ``seed``."""
    if operation == "embedding":
        return True
    temperature = body.get("temperature")
    if isinstance(temperature, (int, float)) and temperature == 0 and temperature is not False:
        return True
    seed = body.get("seed")
    return isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0


class ResponseCache:
    """A response cache on one SQLite file: ``Client(middleware=[ResponseCache(path)])``.

    Args:
        path: the SQLite file (made on first use); share it between threads and processes.
        ttl_s: seconds an answer stays valid (``None``: forever).
        max_bytes: when the stored answers pass this size, the oldest are removed
            (``None``: no limit).
        deterministic_only: cache only requests that should give the same answer again
            (``temperature`` 0 or a fixed ``seed``; embeddings always). ``False`` caches
            every chat, completion and embedding request.
        timeout_s: how long a writer waits for another (SQLite's busy timeout).

    A cache that cannot read or write its file logs a warning and lets the request
    through: it never breaks a call.
    """

    def __init__(
        self,
        path: Union[str, PathLike[str]],
        *,
        ttl_s: Optional[float] = 7 * 24 * 3600.0,
        max_bytes: Optional[int] = 256 * 1024 * 1024,
        deterministic_only: bool = True,
        timeout_s: float = 30.0,
    ) -> None:
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError("ttl_s must be positive (or None for no expiry)")
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError("max_bytes must be positive (or None for no limit)")
        self._db = SQLiteFile(path, _SCHEMA, timeout_s=timeout_s)
        self.path = self._db.path
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self.deterministic_only = deterministic_only
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._contexts: Dict[Tuple[str, str], int] = {}
        # Answers queued for the file, by key, until the writer thread has stored them.
        self._unwritten: Dict[str, Tuple[str, bytes]] = {}
        self._writer: WriteBehind[_Entry] = WriteBehind(
            self._write, name=f"lmstrix-cache-writer {self.path}"
        )

    def __repr__(self) -> str:
        return f"ResponseCache({self.path!r})"

    # ------------------------------------------------------------------ middleware

    def __call__(self, request: Request, call_next: CallNext) -> Response:
        operation = request.extensions.get(OPERATION)
        if operation in ("load", "unload"):
            return self._track_loads(request, call_next(request), operation)
        key = self.key_of(request) if operation in _CACHED_OPERATIONS else None
        if key is None:
            self._count("skipped")
            return call_next(request)
        found = self._get(key)
        if found is not None:
            self._count("hits")
            content_type, body = found
            return BufferedResponse(200, {"content-type": content_type}, body)
        self._count("misses")
        response = call_next(request)
        if response.status_code != 200:
            return response
        streamed = request.stream and _SSE in response.headers.get("content-type", "")
        kind, whole = (_SSE, _is_whole_stream) if streamed else (_JSON, _is_answer)
        return _Recording(response, whole, lambda raw: self._put(key, kind, raw))

    def key_of(self, request: Request) -> Optional[str]:
        """The cache key of ``request``, or ``None`` when it is not to be cached."""
        try:
            body = json.loads(request.body or b"")
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        operation = str(request.extensions.get(OPERATION, ""))
        if self.deterministic_only and not is_deterministic(body, operation):
            return None
        server, path = _server_and_path(request.url)
        model = str(body.get("model", ""))
        settings = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        context = self._contexts.get((server, model))  # one read: atomic, no lock needed
        material = [server, path, model, context, bool(request.stream), settings]
        return hashlib.sha256(canonical(material).encode("utf-8")).hexdigest()

    # ------------------------------------------------------------------ upkeep

    def flush(self) -> None:
        """Wait until the answers stored so far are in the file."""
        self._writer.flush()

    def clear(self) -> None:
        """Remove every stored answer (from the file: for every process sharing it)."""
        self.flush()
        try:
            with self._db.write() as conn:
                conn.execute("DELETE FROM responses")
        except _FILE_ERRORS as exc:
            log.warning("response cache %s: could not clear it: %s", self.path, exc)

    def __len__(self) -> int:
        """How many answers the file holds (expired ones included until looked up)."""
        return self._number("SELECT COUNT(*) FROM responses")

    def size_bytes(self) -> int:
        """The total size of the stored answers."""
        return self._number("SELECT bytes FROM totals")

    def _number(self, query: str) -> int:
        self.flush()
        try:
            return int(self._db.connection().execute(query).fetchone()[0])
        except _FILE_ERRORS as exc:
            raise LMStrixError(
                f"the response cache {self.path} could not be read ({exc}); delete the "
                "file or give another path"
            ) from exc

    def close(self) -> None:
        """Write what is queued, then close this object's connections to the file (it
        reopens them if used again)."""
        self.flush()
        self._db.close()

    # ------------------------------------------------------------------ internals

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def _get(self, key: str) -> Optional[Tuple[str, bytes]]:
        queued = self._unwritten.get(key)  # one read: atomic, no lock needed
        if queued is not None:
            return queued
        try:
            row = (
                self._db.connection()
                .execute("SELECT created, content_type, body FROM responses WHERE key = ?", (key,))
                .fetchone()
            )
            if row is None:
                return None
            if self.ttl_s is not None and time.time() - float(row[0]) > self.ttl_s:
                with self._db.write() as conn:
                    _delete(conn, [key])
                return None
        except _FILE_ERRORS as exc:
            log.warning("response cache %s: could not read it: %s", self.path, exc)
            return None
        return str(row[1]), bytes(row[2])

    def _put(self, key: str, content_type: str, body: bytes) -> None:
        if self.max_bytes is not None and len(body) > self.max_bytes:
            return
        with self._lock:
            self._unwritten[key] = (content_type, body)
        self._writer.submit((key, time.time(), content_type, body))

    def _write(self, batch: List[_Entry]) -> None:
        """Store a batch of answers in one transaction (the writer thread)."""
        rows = [
            (key, created, len(body), content_type, sqlite3.Binary(body))
            for key, created, content_type, body in batch
        ]
        try:
            with self._db.write() as conn:
                # Another process may have stored the same answer first: keep one. The
                # triggers keep the running total of sizes.
                sql = "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?)"
                stored = max(0, conn.executemany(sql, rows).rowcount)
                if stored and self.max_bytes is not None:
                    self._evict(conn, self.max_bytes)
        except _FILE_ERRORS as exc:
            log.warning(
                "response cache %s: could not store %d answer(s): %s", self.path, len(batch), exc
            )
            stored = 0
        with self._lock:
            for key, _, _, _ in batch:
                self._unwritten.pop(key, None)
            self.stats.stores += stored

    @staticmethod
    def _evict(conn: sqlite3.Connection, max_bytes: int) -> None:
        """Remove the oldest answers until the total fits ``max_bytes``."""
        total = int(conn.execute("SELECT bytes FROM totals").fetchone()[0])
        if total <= max_bytes:
            return
        doomed: List[str] = []
        for key, size in conn.execute("SELECT key, size FROM responses ORDER BY created, key"):
            if total <= max_bytes:
                break
            doomed.append(key)
            total -= int(size)
        _delete(conn, doomed)

    def _track_loads(self, request: Request, response: Response, operation: str) -> Response:
        """Remember the context each model is loaded with: it is part of the key."""
        server = _server_and_path(request.url)[0]
        try:
            sent = json.loads(request.body or b"")
        except ValueError:
            return response
        if operation == "unload" or response.status_code != 200:
            with self._lock:
                self._contexts.pop((server, str(sent.get("instance_id", ""))), None)
            return response
        body = response.read()
        response.close()
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if isinstance(answer, dict):
            model = str(sent.get("model", ""))
            loaded = LoadedInstance.from_load_answer(answer, model, None, elapsed_s=0.0)
            if loaded.context_length is not None:
                with self._lock:
                    self._contexts[(server, model)] = loaded.context_length
                    self._contexts[(server, loaded.id)] = loaded.context_length
        return BufferedResponse(response.status_code, response.headers, body)


@functools.lru_cache(maxsize=256)
def _server_and_path(url: str) -> Tuple[str, str]:
    """``("http://host:port", "/path")`` of a request URL (a client sends few of them)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower(), parts.path


def _delete(conn: sqlite3.Connection, keys: List[str]) -> None:
    """Delete the answers of ``keys`` (a trigger takes their size off the running total)."""
    conn.executemany("DELETE FROM responses WHERE key = ?", [(key,) for key in keys])


def _is_answer(body: bytes) -> bool:
    """True for a JSON object that is no error (LM Studio may send an error with a 200)."""
    whole = body.strip()
    if whole[:1] == b"{" and whole[-1:] == b"}" and b'"error"' not in whole:
        return True  # an object with no "error" anywhere: no need to parse it here
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and "error" not in parsed


def _is_whole_stream(raw: bytes) -> bool:
    """True for SSE bytes that ended with ``[DONE]`` and carry no error event."""
    return raw.rstrip().endswith(b"data: [DONE]") and not _ERROR_EVENT.search(raw)


class _Recording:
    """A response passed through as it is read, stored once read whole (``read()``, or
    ``iter_bytes()`` to its end) when ``keep(body)`` says it is worth keeping."""

    def __init__(
        self, inner: Response, keep: Callable[[bytes], bool], store: Callable[[bytes], None]
    ) -> None:
        self._inner = inner
        self._keep = keep
        self._store = store
        self._parts: List[bytes] = []
        self.status_code = inner.status_code
        self.headers = inner.headers

    def read(self) -> bytes:
        body = self._inner.read()
        self._stored(body)
        return body

    def iter_bytes(self) -> Iterator[bytes]:
        for piece in self._inner.iter_bytes():
            self._parts.append(piece)
            yield piece
        raw = b"".join(self._parts)
        self._parts = []
        self._stored(raw)

    def _stored(self, body: bytes) -> None:
        if self._keep(body):
            self._store(body)

    def close(self) -> None:
        self._parts = []
        self._inner.close()
