"""Crash-safe file replacement: temp file, fsync, rename, directory fsync; and backups.

After :func:`atomic_write` returns, the file holds the new bytes, durably; if the process
or the machine dies at any moment before that, the file holds the old bytes. Readers
never see a half-written file. Callers serialise writers (see ``_filelock``), so any
temp file left in the directory when a writer holds the lock was left by a crash.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable, TypeVar

from .._log import logger

__all__ = [
    "atomic_write",
    "fsync_directory",
    "keep_backup",
    "open_for_read",
    "read_bytes",
    "remove_stale_temps",
]

log = logger(__name__)

_T = TypeVar("_T")
_WINDOWS = sys.platform == "win32"
_TEMP_SUFFIX = ".tmp"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _retry_on_sharing_violation(action: Callable[[], _T]) -> _T:
    """Run ``action``, retrying briefly on Windows when another process has the file open.

    Windows refuses to replace or open a file that a reader holds open without
    delete-sharing; such reads are short, so a few retries are enough.
    """
    if not _WINDOWS:
        return action()
    for attempt in range(50):  # pragma: no cover - Windows only
        try:
            return action()
        except PermissionError:
            if attempt == 49:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (POSIX; a no-op on Windows)."""
    if _WINDOWS:  # pragma: no cover - Windows has no directory handles to fsync
        return
    try:
        fd = os.open(str(directory), os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. a directory we may write but not read
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def read_bytes(path: Path) -> bytes:
    """Read a whole file (retrying Windows sharing violations); FileNotFoundError if absent."""
    return _retry_on_sharing_violation(path.read_bytes)


def open_for_read(path: Path) -> BinaryIO:
    """Open a file for reading (retrying Windows sharing violations)."""
    return _retry_on_sharing_violation(lambda: open(str(path), "rb"))


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably, keeping the old file's mode.

    The parent directory must exist. On failure the temp file is removed and ``path`` is
    left as it was.
    """
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(
        dir=str(directory), prefix=_temp_prefix(path), suffix=_TEMP_SUFFIX
    )
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _copy_mode(path, tmp)
        _retry_on_sharing_violation(lambda: os.replace(str(tmp), str(path)))
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_directory(directory)


def _copy_mode(source: Path, target: Path) -> None:
    # mkstemp creates the file private to the user (0600); a new registry stays that way,
    # but an existing file keeps whatever mode the user gave it.
    if _WINDOWS:  # pragma: no cover
        return
    try:
        mode = stat.S_IMODE(os.stat(str(source)).st_mode)
    except FileNotFoundError:
        return
    os.chmod(str(target), mode)


def keep_backup(path: Path, backup: Path) -> None:
    """Make ``backup`` an exact copy of ``path`` as it is now, replacing any older backup.

    Uses a hard link when the file system allows it (cheap, and exact because ``path`` is
    only ever replaced, never written in place); else a byte copy. Either way the backup
    appears atomically: a crash leaves the old backup or the new one.
    """
    try:
        if os.path.samefile(str(path), str(backup)):
            # A writer died between its backup and its rename: the backup is already an
            # exact copy. (Renaming a hard link over its twin would do nothing, and leave
            # the temp name behind.)
            return
    except FileNotFoundError:
        pass
    directory = path.parent
    prefix = _temp_prefix(path)
    tmp = directory / f"{prefix}{os.urandom(8).hex()}{_TEMP_SUFFIX}"
    try:
        try:
            os.link(str(path), str(tmp))
        except OSError:
            # No hard links here (FAT, some network shares): copy the bytes.
            log.debug("hard link failed for %s; copying the backup instead", path)
            _copy_file(path, tmp)
        _retry_on_sharing_violation(lambda: os.replace(str(tmp), str(backup)))
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _copy_file(source: Path, target: Path) -> None:
    with open(str(target), "xb") as out, open(str(source), "rb") as src:
        shutil.copyfileobj(src, out)
        out.flush()
        os.fsync(out.fileno())


def remove_stale_temps(path: Path) -> None:
    """Delete temp files a crashed writer of ``path`` left behind (call with the lock held)."""
    prefix = _temp_prefix(path)
    try:
        names = os.listdir(str(path.parent))
    except OSError:  # pragma: no cover - directory vanished or unreadable
        return
    for name in names:
        if name.startswith(prefix) and name.endswith(_TEMP_SUFFIX):
            try:
                os.unlink(os.path.join(str(path.parent), name))
            except OSError:  # pragma: no cover - raced with something else; harmless
                log.debug("could not remove stale temp file %s", name)
            else:
                log.info("removed temp file %s left by an interrupted write", name)
