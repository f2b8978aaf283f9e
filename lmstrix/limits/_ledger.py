"""Where quotas are counted: in this process (a lock), or in a SQLite file for many.

Two kinds of count: token buckets (a level refilled at a steady rate up to a capacity)
and day totals (tokens used by a label on a UTC day). A :class:`FileLedger` does each
read-then-write in one ``BEGIN IMMEDIATE`` transaction, so processes sharing the file
never both spend the same tokens.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Dict, Optional, Tuple, Union

from ..errors import LMStrixError
from ..middleware._store import SQLiteFile

if TYPE_CHECKING:
    from os import PathLike

__all__ = ["FileLedger", "Ledger", "MemoryLedger", "ledger_for", "refilled", "today"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, level REAL, updated REAL);
CREATE TABLE IF NOT EXISTS days (name TEXT, day TEXT, used REAL, PRIMARY KEY (name, day));
"""


def today() -> str:
    """The UTC day, ``YYYY-MM-DD``: day budgets reset at midnight UTC."""
    return time.strftime("%Y-%m-%d", time.gmtime())


def refilled(
    state: Optional[Tuple[float, float]], capacity: float, per_s: float, now: float
) -> float:
    """A bucket's level at ``now`` (full when it has no ``(level, updated)`` yet)."""
    if state is None:
        return capacity
    level, updated = state
    return min(capacity, level + max(0.0, now - updated) * per_s)


class Ledger:
    """The counts behind :class:`RateLimit` and :class:`Budget` (in memory here)."""

    def take(
        self, name: str, capacity: float, per_s: float, cost: float, force: bool, now: float
    ) -> float:
        """Take ``cost`` from bucket ``name`` at time ``now`` (epoch seconds): 0.0 when
        taken, else the seconds to wait.

        ``force`` takes it even when the level goes below zero (reconciling after the
        fact); a negative ``cost`` gives tokens back.
        """
        raise NotImplementedError

    def reserve(self, name: str, limit: float, amount: float) -> Tuple[bool, float]:
        """Add ``amount`` to today's total of ``name`` unless it would pass ``limit``.

        Returns whether it was added, and the total before.
        """
        raise NotImplementedError

    def used(self, name: str) -> float:
        """Today's total of ``name``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the ledger holds open."""


class MemoryLedger(Ledger):
    """Counts shared by the threads of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: Dict[str, Tuple[float, float]] = {}
        self._days: Dict[Tuple[str, str], float] = {}

    def take(
        self, name: str, capacity: float, per_s: float, cost: float, force: bool, now: float
    ) -> float:
        with self._lock:
            level = refilled(self._buckets.get(name), capacity, per_s, now)
            wait = 0.0 if force or level >= cost else (cost - level) / per_s
            self._buckets[name] = (level - cost if wait == 0.0 else level, now)
            return wait

    def reserve(self, name: str, limit: float, amount: float) -> Tuple[bool, float]:
        with self._lock:
            key = (name, today())
            before = self._days.get(key, 0.0)
            if amount > 0 and before + amount > limit:
                return False, before
            self._days[key] = before + amount
            return True, before

    def used(self, name: str) -> float:
        with self._lock:
            return self._days.get((name, today()), 0.0)


class FileLedger(Ledger):
    """Counts in a SQLite file, shared by the threads and processes that open it."""

    def __init__(self, path: Union[str, PathLike[str]], timeout_s: float = 30.0) -> None:
        self._db = SQLiteFile(path, _SCHEMA, timeout_s=timeout_s)
        self.path = self._db.path

    def __repr__(self) -> str:
        return f"FileLedger({self.path!r})"

    def take(
        self, name: str, capacity: float, per_s: float, cost: float, force: bool, now: float
    ) -> float:
        try:
            with self._db.write() as conn:
                row = conn.execute(
                    "SELECT level, updated FROM buckets WHERE name = ?", (name,)
                ).fetchone()
                level = refilled(None if row is None else (row[0], row[1]), capacity, per_s, now)
                wait = 0.0 if force or level >= cost else (cost - level) / per_s
                conn.execute(
                    "INSERT OR REPLACE INTO buckets VALUES (?, ?, ?)",
                    (name, level - cost if wait == 0.0 else level, now),
                )
                return wait
        except (sqlite3.Error, OSError) as exc:
            raise self._failed(exc) from exc

    def reserve(self, name: str, limit: float, amount: float) -> Tuple[bool, float]:
        day = today()
        try:
            with self._db.write() as conn:
                row = conn.execute(
                    "SELECT used FROM days WHERE name = ? AND day = ?", (name, day)
                ).fetchone()
                before = 0.0 if row is None else float(row[0])
                if amount > 0 and before + amount > limit:
                    return False, before
                conn.execute(
                    "INSERT OR REPLACE INTO days VALUES (?, ?, ?)", (name, day, before + amount)
                )
                conn.execute("DELETE FROM days WHERE day < ?", (day,))  # yesterdays go
                return True, before
        except (sqlite3.Error, OSError) as exc:
            raise self._failed(exc) from exc

    def used(self, name: str) -> float:
        try:
            row = (
                self._db.connection()
                .execute("SELECT used FROM days WHERE name = ? AND day = ?", (name, today()))
                .fetchone()
            )
        except (sqlite3.Error, OSError) as exc:
            raise self._failed(exc) from exc
        return 0.0 if row is None else float(row[0])

    def close(self) -> None:
        self._db.close()

    def _failed(self, exc: Exception) -> LMStrixError:
        return LMStrixError(
            f"the quota file {self.path} could not be used ({exc}); check that it is a "
            "writable SQLite file, or give another path"
        )


def ledger_for(path: Union[str, PathLike[str], None], timeout_s: float = 30.0) -> Ledger:
    """A :class:`FileLedger` on ``path``, or a :class:`MemoryLedger` when it is ``None``."""
    return MemoryLedger() if path is None else FileLedger(path, timeout_s)
