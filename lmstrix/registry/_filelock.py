"""A fair cross-process exclusive lock on a separate lock file, with a timeout.

POSIX uses ``fcntl.flock`` and Windows ``msvcrt.locking`` on byte 0. Both locks belong to
an open file, so the operating system drops them when the holder dies (even by SIGKILL):
there are no stale locks to clean up. The lock file itself is never deleted, because
deleting it would let two processes lock two different files of the same name.

A bare lock goes to whoever tries at the right moment: a process writing in a loop takes
it back before the waiters wake up, and they can wait for tens of seconds. So waiters
queue, first come first served. Each takes a ticket number from the counter file
``<lock>.queue/next`` (under a brief lock of that file) and holds a lock on its own
ticket file ``<lock>.queue/<number>`` until it releases the main lock. It tries the main
lock once the ticket file before its own is gone (released) or no longer locked (its
holder died: the file is removed and the one before it checked in turn). A dead waiter
never blocks the queue, and the main lock alone still guarantees exclusion: a process
that does not queue (an older lmstrix) is only not served in order.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Callable, Optional, Tuple, Type

from .._poll import poll
from ..errors import RegistryError

__all__ = ["FileLock", "hold_lock", "release_lock"]

_WINDOWS = sys.platform == "win32"

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import errno
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


_COUNTER = "next"


def hold_lock(fd: int, path: Path, timeout_s: float) -> None:
    """Take the plain (unqueued) exclusive lock of the open lock file ``fd``.

    For holders that keep the lock file open and hold the lock for microseconds (the
    audit log): no queue, a short backoff. It is the same lock :class:`FileLock` takes.

    Raises:
        RegistryError: the lock was not free within ``timeout_s``.
    """
    if _try_lock(fd):  # the usual case, once per audit line: nothing more to build
        return
    if poll(functools.partial(_try_lock, fd), time.monotonic() + timeout_s, first_s=0.0002):
        return
    raise RegistryError(
        f"timed out after {timeout_s:g} s waiting for the lock file {path}: "
        "another process holds it. Retry, or raise the lock timeout."
    )


def release_lock(fd: int) -> None:
    """Let go of the lock :func:`hold_lock` took."""
    _unlock(fd)


def _discard(fd: int, path: Path) -> None:
    """Remove a locked ticket file and let go of it (POSIX: remove first, then unlock)."""
    if not _WINDOWS:
        _remove(path)
    try:
        _unlock(fd)
    finally:
        os.close(fd)
    if _WINDOWS:  # pragma: no cover - Windows cannot remove a file that is open
        _remove(path)


def _remove(path: Path) -> None:
    # Gone already, or (Windows) still open elsewhere: the next waiter cleans it up.
    with contextlib.suppress(OSError):
        os.unlink(str(path))


class FileLock:
    """An exclusive lock held on ``path`` (created with its directory on first use).

    Waiters are served in the order they came (see the module notes), so none waits
    much longer than the others. Not re-entrant, and not meant to be shared between
    threads: guard it with a ``threading.Lock``. Use as a context manager or with
    :meth:`acquire`/:meth:`release`.
    """

    def __init__(self, path: Path, *, timeout_s: float = 30.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._fd: Optional[int] = None
        self._ticket: Optional[Tuple[int, Path]] = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    @property
    def queue_dir(self) -> Path:
        """The folder of the waiters' queue: the ticket counter and the ticket files."""
        return self.path.with_name(self.path.name + ".queue")

    def acquire(self) -> None:
        """Queue for the lock, then take it; polls with a short backoff.

        Raises:
            RegistryError: the lock was not free within ``timeout_s``, or the lock file
                could not be opened.
        """
        if self._fd is not None:
            raise RegistryError(f"lock {self.path} is already held by this object")
        deadline = time.monotonic() + self.timeout_s
        try:
            self.queue_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RegistryError(f"cannot open the lock file {self.path}: {exc}") from exc
        try:
            number = self._take_ticket(deadline)
            self._wait_for_turn(number, deadline)
            self._poll(functools.partial(_try_lock, fd), deadline)
        except BaseException:
            os.close(fd)
            self._leave_queue()
            raise
        self._fd = fd

    def release(self) -> None:
        """Release the lock (a no-op when it is not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _unlock(fd)
        finally:
            os.close(fd)
            self._leave_queue()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.release()

    # -- the queue ---------------------------------------------------------------------

    def _take_ticket(self, deadline: float) -> int:
        """Take the next number and lock its ticket file, under the counter file's lock."""
        queue = self.queue_dir
        try:
            counter = os.open(str(queue / _COUNTER), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RegistryError(f"cannot open the lock queue in {queue}: {exc}") from exc
        try:
            self._poll(functools.partial(_try_lock, counter), deadline)
            try:
                os.lseek(counter, 0, os.SEEK_SET)
                text = os.read(counter, 32).strip()
                number = int(text) if text.isdigit() else 0
                while True:
                    path = queue / str(number)
                    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
                    if _try_lock(fd):
                        break
                    os.close(fd)  # a live waiter has this number: the counter was reset
                    number += 1
                self._ticket = (fd, path)
                data = b"%d\n" % (number + 1)
                os.lseek(counter, 0, os.SEEK_SET)
                os.write(counter, data)
                os.ftruncate(counter, len(data))
            finally:
                _unlock(counter)
        except OSError as exc:
            raise RegistryError(f"cannot take a ticket in the lock queue {queue}: {exc}") from exc
        finally:
            os.close(counter)
        return number

    def _wait_for_turn(self, number: int, deadline: float) -> None:
        """Wait until the ticket before ``number`` is released or its holder is dead."""
        queue = self.queue_dir
        for before in range(number - 1, -1, -1):
            path = queue / str(before)
            try:
                fd = os.open(str(path), os.O_RDWR)
            except OSError:
                return  # released: every ticket before it was done with too
            try:
                self._poll(functools.partial(_try_lock, fd), deadline)
            except BaseException:
                os.close(fd)
                raise
            # Free yet still there: released this very moment, or its holder died
            # while waiting. Clear it away and make sure of the ticket before it.
            _discard(fd, path)

    def _leave_queue(self) -> None:
        ticket, self._ticket = self._ticket, None
        if ticket is not None:
            _discard(*ticket)

    def _poll(self, attempt: Callable[[], bool], deadline: float) -> None:
        if not poll(attempt, deadline):
            raise RegistryError(
                f"timed out after {self.timeout_s:g} s waiting for the lock file "
                f"{self.path}: another lmstrix process is writing the registry. "
                "Retry when it is done, or raise the lock timeout."
            )
