"""A cross-process exclusive lock on a separate lock file, with a timeout.

POSIX uses ``fcntl.flock`` and Windows ``msvcrt.locking`` on byte 0. Both locks belong to
an open file, so the operating system drops them when the holder dies (even by SIGKILL):
there are no stale locks to clean up. The lock file itself is never deleted, because
deleting it would let two processes lock two different files of the same name.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Optional, Type

from ..errors import RegistryError

__all__ = ["FileLock"]

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


_MAX_POLL_S = 0.01


class FileLock:
    """An exclusive lock held on ``path`` (created with its directory on first use).

    Not re-entrant, and not meant to be shared between threads: guard it with a
    ``threading.Lock``. Use as a context manager or with :meth:`acquire`/:meth:`release`.
    """

    def __init__(self, path: Path, *, timeout_s: float = 30.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Wait for the lock, polling with backoff.

        Raises:
            RegistryError: the lock was not free within ``timeout_s``, or the lock file
                could not be opened.
        """
        if self._fd is not None:
            raise RegistryError(f"lock {self.path} is already held by this object")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RegistryError(f"cannot open the lock file {self.path}: {exc}") from exc
        deadline = time.monotonic() + self.timeout_s
        delay = 0.001
        try:
            while not _try_lock(fd):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RegistryError(
                        f"timed out after {self.timeout_s:g} s waiting for the lock file "
                        f"{self.path}: another lmstrix process is writing the registry. "
                        "Retry when it is done, or raise the lock timeout."
                    )
                time.sleep(min(delay, remaining))
                # Short cap: a registry write holds the lock for milliseconds, and a
                # long sleep would leave the lock idle while waiters doze.
                delay = min(delay * 2, _MAX_POLL_S)
        except BaseException:
            os.close(fd)
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
