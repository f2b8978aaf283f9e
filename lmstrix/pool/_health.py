"""The pool's background health checks (:meth:`lmstrix.Pool.start`): one thread that asks
every server for its models every ``interval_s``.

A failed check counts as the server's failure (a server that keeps failing sits out its
cooldown) and is logged; an unexpected error in one check is logged with its traceback,
and the checks go on. A thread that ended without being stopped (it can die before its
first line: see :mod:`lmstrix._threads`) is noticed on the pool's next call,
which starts another.
"""

from __future__ import annotations

import functools
import threading
from typing import Optional, Sequence

from .._log import logger
from .._threads import start_thread
from ..errors import APIError
from ._member import Member

__all__ = ["HealthChecks"]

log = logger(__name__)


class HealthChecks:
    """Started by :meth:`start`, ended by :meth:`stop`; :meth:`revive` on every call."""

    def __init__(self, members: Sequence[Member]) -> None:
        self._members = members
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._interval_s: Optional[float] = None  # set while the checks should run

    def start(self, interval_s: float) -> None:
        """Check every server every ``interval_s`` in a thread (once: a second call while
        they run changes nothing)."""
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        with self._lock:
            if self._interval_s is not None:
                return
            self._interval_s = interval_s
            self._stop.clear()
            self._start(interval_s)

    def revive(self) -> None:
        """Start another thread when the checks should run and their thread is gone."""
        if not self._gone():  # the usual cases take no lock: no checks, or a live thread
            return
        with self._lock:
            interval_s = self._interval_s
            if interval_s is None or not self._gone():
                return
            if self._thread is not None:
                log.warning("pool: its health-check thread ended unexpectedly; starting another")
            self._start(interval_s)

    def _gone(self) -> bool:
        """True when the checks should run and no live thread runs them."""
        thread = self._thread
        return self._interval_s is not None and (thread is None or not thread.is_alive())

    def stop(self) -> None:
        """End the checks and wait for their thread."""
        with self._lock:
            self._interval_s = None
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _start(self, interval_s: float) -> None:
        """Under the lock: the checks' thread (``None`` when none could start)."""
        run = functools.partial(self._run, interval_s)
        then = "the next call tries again"
        self._thread = start_thread(run, "lmstrix-pool", "health-check", then)

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            for member in self._members:
                try:
                    member.models(force=True)
                except APIError as exc:
                    log.info("pool: %s is not answering: %s", member.url, exc)
                except Exception:  # a check's own fault must not end the checks
                    log.exception("pool: the health check of %s failed", member.url)
