"""``lmstrix.middleware._store.SQLiteFile``: the file shared by the cache and the quotas."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import List

from lmstrix.middleware._store import SQLiteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS counts (name TEXT PRIMARY KEY, value INTEGER);
INSERT OR IGNORE INTO counts VALUES ('calls', 0);
"""


def test_threads_opening_a_new_file_at_once_all_get_in(tmp_path: Path) -> None:
    # Eight threads open the same new file together, each with its own object, and
    # count. Switching a new file to WAL needs it to itself, and SQLite says "database
    # is locked" at once to the others (it did, about one run in fifteen): they wait.
    failed: List[BaseException] = []
    for trial in range(30):
        path = tmp_path / f"shared-{trial}.sqlite"

        def work() -> None:
            store = SQLiteFile(path, SCHEMA, timeout_s=30)  # noqa: B023 - this trial's file
            try:
                for _ in range(5):
                    with store.write() as conn:
                        conn.execute("UPDATE counts SET value = value + 1")
            except BaseException as exc:
                failed.append(exc)
            finally:
                store.close()

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        store = SQLiteFile(path, SCHEMA)
        counted = store.connection().execute("SELECT value FROM counts").fetchone()[0]
        mode = store.connection().execute("PRAGMA journal_mode").fetchone()[0]
        store.close()
        assert failed == [] and counted == 40 and mode == "wal", (trial, failed)
