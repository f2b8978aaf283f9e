"""Where lmstrix keeps its data: pure functions of the environment and the platform.

Nothing here touches the file system; directories are created by whoever first
writes into them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Optional

__all__ = ["data_home", "default_registry_path"]

_APP = "lmstrix"
REGISTRY_FILENAME = "registry.json"


def _expand(value: str) -> Path:
    return Path(os.path.expanduser(value))


def _home(environ: Mapping[str, str], platform: str) -> Path:
    # Path.home() ignores a fake environ; read the variables ourselves so tests are pure.
    if platform == "win32":
        home = environ.get("USERPROFILE")
        if home:
            return Path(home)
    else:
        home = environ.get("HOME")
        if home:
            return Path(home)
    return Path.home()


def data_home(
    environ: Optional[Mapping[str, str]] = None, *, platform: Optional[str] = None
) -> Path:
    """Return the lmstrix data directory (not created).

    ``$LMSTRIX_HOME`` when set; otherwise the platform's data directory:
    ``%LOCALAPPDATA%\\lmstrix`` on Windows, ``~/Library/Application Support/lmstrix`` on
    macOS, and ``$XDG_DATA_HOME/lmstrix`` (default ``~/.local/share/lmstrix``) elsewhere.
    ``environ`` defaults to ``os.environ`` and ``platform`` to ``sys.platform``.

    >>> data_home({"LMSTRIX_HOME": "/srv/lmstrix"}).as_posix()
    '/srv/lmstrix'
    >>> data_home({"HOME": "/home/ann"}, platform="linux").as_posix()
    '/home/ann/.local/share/lmstrix'
    >>> data_home({"HOME": "/Users/ann"}, platform="darwin").as_posix()
    '/Users/ann/Library/Application Support/lmstrix'
    """
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    override = env.get("LMSTRIX_HOME")
    if override:
        return _expand(override)
    if plat == "win32":
        local = env.get("LOCALAPPDATA")
        if local:
            return Path(local) / _APP
        return _home(env, plat) / "AppData" / "Local" / _APP
    if plat == "darwin":
        return _home(env, plat) / "Library" / "Application Support" / _APP
    xdg = env.get("XDG_DATA_HOME")
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / _APP
    return _home(env, plat) / ".local" / "share" / _APP


def default_registry_path(
    environ: Optional[Mapping[str, str]] = None, *, platform: Optional[str] = None
) -> Path:
    """Return the registry file path: ``$LMSTRIX_REGISTRY``, else ``data_home()/registry.json``.

    >>> default_registry_path({"LMSTRIX_REGISTRY": "/tmp/r.json"}).as_posix()
    '/tmp/r.json'
    >>> default_registry_path({"LMSTRIX_HOME": "/srv/lmstrix"}).as_posix()
    '/srv/lmstrix/registry.json'
    """
    env = os.environ if environ is None else environ
    override = env.get("LMSTRIX_REGISTRY")
    if override:
        return _expand(override)
    return data_home(env, platform=platform) / REGISTRY_FILENAME
