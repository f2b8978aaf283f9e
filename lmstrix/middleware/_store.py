"""A SQLite file shared by the threads of a process and by processes (cache, quotas).

Each thread gets its own connection (a forked child opens new ones); the file is in WAL
mode so readers never wait for a writer, and writers wait up to ``timeout_s`` for each
other (SQLite's busy timeout). :meth:`SQLiteFile.write` runs a ``BEGIN IMMEDIATE``
transaction: a read-then-write inside it is atomic across processes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Iterator, List, Union

from .._forks import generation
from .._poll import poll

if TYPE_CHECKING:
    from os import PathLike

__all__ = ["SQLiteFile"]


class SQLiteFile:
    """One SQLite database file, opened lazily per thread, created with ``schema``."""

    def __init__(
        self, path: Union[str, PathLike[str]], schema: str, *, timeout_s: float = 30.0
    ) -> None:
        self.path = os.fspath(path)
        self._schema = schema
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: List[sqlite3.Connection] = []

    def __repr__(self) -> str:
        return f"SQLiteFile({self.path!r})"

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened, and the schema made, on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.generation == generation():
            return conn  # type: ignore[no-any-return]
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._timeout_s * 1000)}")
        self._use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(self._schema)
        self._local.conn, self._local.generation = conn, generation()
        with self._lock:
            self._opened.append(conn)
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Put the file in WAL mode (once for all: the mode is kept in the file).

        Switching a new file's mode needs it to itself, and SQLite answers "database is
        locked" at once, without its busy timeout, when another connection opening it at
        the same moment holds it: wait and ask again, up to the timeout.
        """
        locked: List[sqlite3.OperationalError] = []

        def attempt() -> bool:
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                locked.append(exc)
                return False
            return True

        if not poll(attempt, time.monotonic() + self._timeout_s, first_s=0.001, max_s=0.05):
            raise locked[-1]

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on error."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this object opened (in this process)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
