"""Write-behind: hand items to a background thread that writes them in batches.

A cache miss should not wait for a SQLite commit: :meth:`WriteBehind.submit` queues the
answer and returns, and one thread per cache writes whatever has queued up in one
transaction, ``linger_s`` after the first item of a batch came (so a busy client pays for
one commit per batch, not one per miss). The thread
starts on the first item and ends after a second with nothing to do, so an idle object
holds no thread. :meth:`flush` waits until everything queued so far
is written; queued items are also written when the interpreter exits normally (a killed
process loses what it had not written yet).
A forked child starts with an empty queue and its own thread: the parent writes its own.

A writer thread can end without running (:mod:`lmstrix._threads` says when CPython does
that). :meth:`submit` and :meth:`flush` notice a writer that ended without saying so and
start another; after ``_MAX_LOST`` such writers in one flush, or when no thread can start (at
interpreter shutdown, early CPython 3.12 releases refuse new threads), the flush writes the queue
itself.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from typing import Any, Callable, Generic, List, Optional, TypeVar

from .._forks import generation
from .._log import logger
from .._threads import start_thread

__all__ = ["WriteBehind"]

log = logger(__name__)

T = TypeVar("T")

_IDLE_S = 1.0
_CHECK_S = 0.2  # how often a waiting flush looks whether its writer thread is still there
_MAX_LOST = 3  # writer threads lost in one flush before it writes the queue itself


class WriteBehind(Generic[T]):
    """Queue items for ``write(batch)``, called in a background thread."""

    def __init__(
        self, write: Callable[[List[T]], None], *, name: str, linger_s: float = 0.05
    ) -> None:
        self._write = write
        self._linger_s = linger_s
        self._hurry = False  # a flush is waiting: write now
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._queue: List[T] = []
        self._busy = False
        self._thread: Optional[threading.Thread] = None
        self._generation = generation()
        self._at_exit = False

    def _forked(self) -> None:
        """In a forked child: the parent's queue is not ours, its thread is not here, and
        its lock may have been held at the fork."""
        self._cond = threading.Condition(threading.Lock())
        self._queue, self._busy, self._thread, self._hurry = [], False, None, False
        self._generation = generation()

    def submit(self, item: T) -> None:
        """Queue ``item``; the background thread writes it soon."""
        if self._generation != generation():  # in a forked child
            self._forked()
        with self._cond:
            self._queue.append(item)
            if self._thread is None or self._lost():
                self._start()  # if no thread can start now, a flush writes the queue
            elif len(self._queue) == 1:
                self._cond.notify()  # wake an idle writer; a lingering one waits on

    def flush(self) -> None:
        """Wait until every item queued so far is written (or its write failed)."""
        if self._generation != generation():
            self._forked()
        lost = 0
        with self._cond:
            while self._queue or self._busy:
                if self._lost():
                    lost += 1
                if self._thread is None and (lost >= _MAX_LOST or not self._start()):
                    batch, self._queue = self._queue, []
                    self._write_logged(batch)  # no writer thread to be had: write it here
                    continue
                self._hurry = True
                self._cond.notify_all()
                self._cond.wait(_CHECK_S)

    def _lost(self) -> bool:
        """Under the lock: True (and the writer forgotten) when it ended without saying
        so: it died before its first line, or a ``BaseException`` went through it."""
        thread = self._thread
        if thread is None or thread.is_alive():
            return False
        log.warning("%s: its writer thread ended unexpectedly", self._name)
        self._thread = None
        return True

    def _start(self) -> bool:
        """Under the lock: start a writer thread; False when none can start now (at
        interpreter shutdown, early CPython 3.12 releases refuse new threads; or the system's
        limit)."""
        if not self._at_exit:
            self._at_exit = True
            atexit.register(_flush_at_exit, weakref.ref(self))
        self._thread = start_thread(self._run, self._name, "writer", "a flush writes the queue")
        return self._thread is not None

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._cond.wait(_IDLE_S)
                if not self._queue:
                    self._thread = None  # idle: a later submit starts a new thread
                    self._cond.notify_all()
                    return
                deadline = time.monotonic() + self._linger_s
                while not self._hurry:  # let more items come: one commit for all of them
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch, self._queue, self._hurry = self._queue, [], False
                self._busy = True
            try:
                self._write_logged(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write_logged(self, batch: List[T]) -> None:
        try:
            self._write(batch)
        except Exception:  # the writer reports its own errors; never kill the thread
            log.exception("%s: a batch of %d could not be written", self._name, len(batch))


def _flush_at_exit(ref: weakref.ref[WriteBehind[Any]]) -> None:
    writer = ref()
    if writer is not None:
        writer.flush()
