"""Which fork of the process this is, without a system call per question.

Objects holding per-process resources (an open file and its lock, SQLite connections, a
writer thread) note :func:`generation` when they make them, and make new ones when it has
changed: a forked child must not use its parent's (a lock taken through an inherited
descriptor would be the parent's lock too). The number grows by one in each child of
``os.fork()``, through ``os.register_at_fork``, installed by the first call rather than
on import. (Asking ``os.getpid()`` instead costs a system call on every use.)
"""

from __future__ import annotations

import os
import threading

__all__ = ["generation"]

_state = {"generation": 0, "hooked": False}
_lock = threading.Lock()


def _forked() -> None:
    _state["generation"] += 1


def generation() -> int:
    """A number that changes in a forked child (0 in a process that never forked)."""
    if not _state["hooked"]:
        with _lock:
            if not _state["hooked"] and hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_forked)
            _state["hooked"] = True
    return _state["generation"]
