"""Try something again and again until it works or a deadline passes, with growing sleeps.

The registry's lock file, the audit log's lock and the SQLite files' switch to WAL all
wait this way for another holder to let go.
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["poll"]


def poll(
    attempt: Callable[[], bool], deadline: float, *, first_s: float = 0.0005, max_s: float = 0.005
) -> bool:
    """Call ``attempt()`` until it returns true; ``False`` once ``deadline`` (on
    ``time.monotonic()``) has passed. The sleep between tries doubles from ``first_s`` up
    to ``max_s``: short by default, as the holders let go within milliseconds and a long
    sleep would leave the lock idle while the next in line dozes."""
    delay = first_s
    while not attempt():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, max_s)
    return True
