"""User settings: a small JSON file of named values, kept beside the registry.

The file is ``settings.json`` in the folder the registry path resolves to (so
``$LMSTRIX_REGISTRY``, ``$LMSTRIX_HOME`` and ``--registry`` move both together). Only
the names in :data:`SETTINGS` are accepted; writes are atomic (a temp file replaced
into place) and serialised between threads and processes by a lock file beside it.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Union

from ..errors import ConfigError
from ._atomic import atomic_write, read_bytes
from ._filelock import FileLock
from ._paths import default_registry_path

__all__ = ["SETTINGS", "SETTINGS_FILENAME", "UserSettings"]

SETTINGS_FILENAME = "settings.json"

#: The settings a user may set, and what each means.
SETTINGS: Dict[str, str] = {
    "default-model": "the model `lmstrix chat` uses when none is given",
}


def _check_name(name: str) -> str:
    if name not in SETTINGS:
        known = ", ".join(sorted(SETTINGS))
        raise ConfigError(f"unknown setting {name!r}; the settings are: {known}")
    return name


class UserSettings:
    """The user's settings file: :meth:`get`, :meth:`set`, :meth:`unset`, :meth:`values`.

    ``path`` is the settings file; by default ``settings.json`` beside the registry
    (see :meth:`beside`). Creating one does no I/O; the file and its folder appear on
    the first write. Safe to share between threads and processes.

    Raises:
        ConfigError: an unknown setting name, an empty value, or a damaged file.
    """

    def __init__(self, path: Union[str, os.PathLike[str], None] = None) -> None:
        self._path = (
            default_registry_path().with_name(SETTINGS_FILENAME)
            if path is None
            else Path(os.path.expanduser(os.fspath(path)))
        )
        self._lock = threading.Lock()

    @classmethod
    def beside(cls, registry_path: Union[str, os.PathLike[str], None]) -> UserSettings:
        """The settings kept beside the registry file ``registry_path`` (None: the default)."""
        if registry_path is None:
            return cls()
        registry = Path(os.path.expanduser(os.fspath(registry_path)))
        return cls(registry.with_name(SETTINGS_FILENAME))

    def __repr__(self) -> str:
        return f"UserSettings({str(self._path)!r})"

    @property
    def path(self) -> Path:
        """The settings file."""
        return self._path

    def values(self) -> Dict[str, str]:
        """Every setting that is set, by name."""
        return {k: v for k, v in self._read().items() if k in SETTINGS}

    def get(self, name: str) -> Optional[str]:
        """The value of setting ``name``, or ``None`` when it is not set."""
        return self._read().get(_check_name(name))

    def set(self, name: str, value: str) -> None:
        """Set ``name`` to ``value`` (a non-empty string)."""
        _check_name(name)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"setting {name!r} needs a value, not {value!r}")
        self._change(name, value.strip())

    def unset(self, name: str) -> bool:
        """Forget ``name``; True when it was set."""
        return self._change(_check_name(name), None)

    def _read(self) -> Dict[str, str]:
        return {str(k): v for k, v in self._document().items() if isinstance(v, str)}

    def _document(self) -> Dict[str, Any]:
        """The whole file (settings of a newer version included), ``{}`` when missing."""
        try:
            raw = read_bytes(self._path)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"cannot read the settings file {self._path}: {exc}") from exc
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(
                f"the settings file {self._path} is not valid JSON ({exc}); fix it or delete it"
            ) from exc
        if not isinstance(doc, dict):
            raise ConfigError(
                f"the settings file {self._path} must hold a JSON object; fix it or delete it"
            )
        return doc

    def _change(self, name: str, value: Optional[str]) -> bool:
        """Set (or with ``None`` remove) one setting under the lock; True if it was set."""
        with self._lock:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                lock = FileLock(self._path.with_name(self._path.name + ".lock"))
            except OSError as exc:
                raise ConfigError(f"cannot write the settings file {self._path}: {exc}") from exc
            with lock:
                doc = self._document()
                was_set = isinstance(doc.get(name), str)
                if value is None:
                    if name not in doc:
                        return False
                    del doc[name]
                else:
                    doc[name] = value
                data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
                try:
                    atomic_write(self._path, data)
                except OSError as exc:
                    raise ConfigError(
                        f"cannot write the settings file {self._path}: {exc}"
                    ) from exc
            return was_set
