"""Threads that end before their first line, as they can in real runs.

On CPython 3.11 and older, a thread that starts while another thread runs a Python audit
hook inside ``sys.settrace`` dies in ``Thread._bootstrap_inner`` before its target runs
("Cannot install a trace function while another trace function is being installed"), and
tracers such as coverage call ``sys.settrace`` in every new thread. These helpers give a
module a ``threading`` whose first threads end the same way: started, never run.
"""

from __future__ import annotations

import threading
import types
from typing import Any, List


def threading_losing(count: int) -> Any:
    """A stand-in for the ``threading`` module whose first ``count`` threads end at once
    without running their target; ``.lost`` lists their names. Everything else is the
    real module's (patch it into one module, so the simulator's own threads still run)."""
    lost: List[str] = []

    class Thread(threading.Thread):
        def run(self) -> None:
            if len(lost) < count:
                lost.append(self.name)
                return
            super().run()

    return types.SimpleNamespace(**{**vars(threading), "Thread": Thread, "lost": lost})


def threading_refusing() -> Any:
    """A stand-in for ``threading`` whose threads refuse to start, as at interpreter
    shutdown on early CPython 3.12 releases ("can't create new thread at interpreter
    shutdown") or at the system's thread limit."""

    class Thread(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

    return types.SimpleNamespace(**{**vars(threading), "Thread": Thread})
