"""Finding the local LM Studio server by itself, from the port LM Studio writes to disk.

LM Studio keeps its files in its home folder: ``$LMSTUDIO_HOME``, else the folder named
in ``~/.lmstudio-home-pointer``, else ``~/.cache/lm-studio`` when it exists, else
``~/.lmstudio`` (the order of LM Studio's own ``findLMStudioHome``). Under ``.internal``
it publishes the port of its running API server in ``http-server.json`` (the ``lms``
CLI reads it; ``$LMS_API_SERVER_INFO_PATH`` names another file) and the HTTP server's
configured port in ``http-server-config.json``. The first file with a valid ``port``
wins. A missing file is passed over; a malformed one is passed over with a warning.

Only :func:`~lmstrix.config.resolve_base_url` calls this, when no server was given.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import List, Mapping, Optional

from ._log import logger

__all__ = ["ENV_HOME", "ENV_INFO_PATH", "FoundServer", "discover_server", "server_files"]

log = logger(__name__)

ENV_HOME = "LMSTUDIO_HOME"
ENV_INFO_PATH = "LMS_API_SERVER_INFO_PATH"
_FILES = ("http-server.json", "http-server-config.json")


@dataclass(frozen=True)
class FoundServer:
    """A server found on disk: its URL and the file that gave its port."""

    url: str
    path: str


def _user_home(env: Mapping[str, str]) -> Optional[str]:
    return env.get("HOME") or env.get("USERPROFILE") or None


def lmstudio_home(env: Mapping[str, str]) -> Optional[str]:
    """LM Studio's home folder as LM Studio finds it, or ``None`` without a user home."""
    if env.get(ENV_HOME):
        return os.path.abspath(env[ENV_HOME])
    home = _user_home(env)
    if home is None:
        return None
    try:
        with open(os.path.join(home, ".lmstudio-home-pointer"), encoding="utf-8") as fh:
            pointed = fh.read().strip()
    except (OSError, UnicodeDecodeError):
        pointed = ""
    if pointed:
        return pointed
    cache = os.path.join(home, ".cache", "lm-studio")
    return cache if os.path.isdir(cache) else os.path.join(home, ".lmstudio")


def server_files(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """The files that may hold the server's port, in the order they are read."""
    env = os.environ if environ is None else environ
    files = [env[ENV_INFO_PATH]] if env.get(ENV_INFO_PATH) else []
    home = lmstudio_home(env)
    if home is not None:
        files += [os.path.join(home, ".internal", name) for name in _FILES]
    return files


def _port(path: str) -> Optional[int]:
    """The port in ``path``; ``None`` (with a warning when the file is bad) otherwise."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(65536)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("ignoring %s: it cannot be read (%s)", path, exc.strerror or exc)
        return None
    try:
        info = json.loads(raw.decode("utf-8"))
    except ValueError:
        log.warning("ignoring %s: it is not JSON", path)
        return None
    port = info.get("port") if isinstance(info, dict) else None
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        log.warning("ignoring %s: it has no valid port (%r)", path, port)
        return None
    return port


def discover_server(environ: Optional[Mapping[str, str]] = None) -> Optional[FoundServer]:
    """The local LM Studio server whose port LM Studio wrote down, or ``None``.

    ``environ`` (default ``os.environ``) gives ``$LMSTUDIO_HOME``,
    ``$LMS_API_SERVER_INFO_PATH`` and the user's home (``$HOME`` or ``$USERPROFILE``).
    """
    for path in server_files(environ):
        port = _port(path)
        if port is not None:
            found = FoundServer(f"http://localhost:{port}", path)
            log.info("using the LM Studio server found in %s: %s", path, found.url)
            return found
    return None
