"""The registry: what lmstrix has learnt about each model, in one JSON file.

Records are keyed by server and model key, because limits depend on the machine. Every
write is a read-modify-write under a cross-process lock (``registry.json.lock``) and
replaces the file atomically, keeping the previous good file as ``registry.json.bak``.
Reads take no lock. A corrupt file is never written to, moved or repaired.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, TypeVar, Union

from .._log import logger
from ..errors import RegistryError
from . import _atomic
from ._file import (
    DEFAULT_SERVER,
    SCHEMA_VERSION,
    Document,
    dump_document,
    normalize_server,
    parse_document,
)
from ._filelock import FileLock
from ._paths import default_registry_path
from ._records import IDENTITY_FIELDS, ModelRecord, ProbeRecord, RecordFieldError

if TYPE_CHECKING:
    from ..types import ModelInfo

__all__ = [
    "DEFAULT_SERVER",
    "SCHEMA_VERSION",
    "ModelRecord",
    "ProbeRecord",
    "RecordFieldError",
    "Registry",
    "SyncResult",
    "normalize_server",
]

log = logger(__name__)

_T = TypeVar("_T")
# A file modified this close to when we read it may change again without its timestamp
# moving (coarse clocks): do not trust the cached copy of such a file ("racy git").
_RACY_WINDOW_NS = 2_000_000_000


@dataclass(frozen=True)
class SyncResult:
    """What :meth:`Registry.sync` changed on ``server``; each list holds model keys, sorted.

    ``updated`` holds known models whose identity or declared context changed, or that
    came back (those are also in ``returned``); ``vanished`` the models newly missing.
    """

    server: str
    added: List[str]
    updated: List[str]
    vanished: List[str]
    returned: List[str]


class Registry:
    """The model registry: one JSON file of models and their measured limits.

    The file is ``path``, by default ``$LMSTRIX_REGISTRY``, else
    ``$LMSTRIX_HOME/registry.json``, else ``registry.json`` in the platform data folder
    (``$XDG_DATA_HOME/lmstrix`` or ``~/.local/share/lmstrix``, ``~/Library/Application
    Support/lmstrix``, ``%LOCALAPPDATA%\\lmstrix``).

    ``server`` is the default scope of every method (else ``$LMSTRIX_SERVER``, else
    ``http://localhost:1234``); each method takes ``server=`` to use another. Safe to
    share between threads and processes. Creating a registry does no I/O; the file and
    its directory appear on the first write.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike[str], None] = None,
        *,
        server: Optional[str] = None,
        lock_timeout_s: float = 30.0,
    ) -> None:
        self._path = (
            default_registry_path() if path is None else Path(os.path.expanduser(os.fspath(path)))
        )
        self._server = normalize_server(
            server or os.environ.get("LMSTRIX_SERVER") or DEFAULT_SERVER
        )
        self.lock_timeout_s = lock_timeout_s
        self._lock = threading.Lock()
        self._writer: Optional[int] = None
        self._cache: Optional[Tuple[Tuple[int, ...], Document]] = None

    def __repr__(self) -> str:
        return f"Registry({str(self._path)!r}, server={self._server!r})"

    @property
    def path(self) -> Path:
        """The registry file."""
        return self._path

    @property
    def backup_path(self) -> Path:
        """The last good copy of the file, kept beside it (``registry.json.bak``)."""
        return self._path.with_name(self._path.name + ".bak")

    @property
    def lock_path(self) -> Path:
        """The lock file writers hold (``registry.json.lock``)."""
        return self._path.with_name(self._path.name + ".lock")

    @property
    def server(self) -> str:
        """The default server scope (normalised)."""
        return self._server

    # -- reading ---------------------------------------------------------------

    def get(self, key: str, *, server: Optional[str] = None) -> Optional[ModelRecord]:
        """Return the record of ``key``, or ``None``.

        Raises:
            RegistryCorruptError: the file is damaged (it is left untouched).
            RegistryError: the file cannot be read, or needs a newer lmstrix.
        """
        return self._read().servers.get(self._scope(server), {}).get(key)

    def records(self, *, server: Optional[str] = None) -> List[ModelRecord]:
        """Return every record of the server, vanished ones included, sorted by key."""
        models = self._read().servers.get(self._scope(server), {})
        return [models[key] for key in sorted(models)]

    def servers(self) -> List[str]:
        """Return the servers that have records, sorted."""
        return sorted(server for server, models in self._read().servers.items() if models)

    # -- writing ---------------------------------------------------------------

    def update(
        self,
        key: str,
        fn: Callable[[Optional[ModelRecord]], Optional[ModelRecord]],
        *,
        server: Optional[str] = None,
    ) -> Optional[ModelRecord]:
        """Atomically replace the record of ``key`` with ``fn(current)``; return what was stored.

        ``fn`` gets the current record (``None`` if there is none) and returns the new
        one, or ``None`` to delete it. It runs under the lock, against the file as it is
        now, so concurrent updates from other threads and processes are never lost. It
        must not write to the registry itself; if it raises, nothing is written.

        Raises:
            ValueError: ``fn`` returned a record for another key or server, or
                (``RecordFieldError``, also a ``RegistryError``) one with a field of the
                wrong type, which the next read would refuse.
            RegistryError: the lock timed out, or the file cannot be read or written.
        """
        scope = self._scope(server)

        def apply(doc: Document) -> Optional[ModelRecord]:
            models = doc.servers.setdefault(scope, {})
            new = fn(models.get(key))
            if new is None:
                models.pop(key, None)
                return None
            new = _owned(new, key, scope)
            models[key] = new
            return new

        return self._write(apply)

    def upsert(self, record: ModelRecord, *, server: Optional[str] = None) -> ModelRecord:
        """Store ``record``, replacing any record of the same key; return it as stored.

        The scope is ``record.server`` when set (normalised), else ``server`` or the
        default.
        """
        scope = normalize_server(record.server) if record.server else self._scope(server)
        if not record.key:
            raise ValueError("a ModelRecord needs a key to be stored")
        stored = self.update(record.key, lambda _old: record, server=scope)
        assert stored is not None
        return stored

    def remove(self, key: str, *, server: Optional[str] = None) -> bool:
        """Delete the record of ``key``; return whether there was one."""
        scope = self._scope(server)

        def apply(doc: Document) -> bool:
            return doc.servers.get(scope, {}).pop(key, None) is not None

        return self._write(apply)

    def append_probe(
        self, key: str, probe: ProbeRecord, *, server: Optional[str] = None, **changes: Any
    ) -> ModelRecord:
        """Add ``probe`` to the history of ``key`` and apply ``changes`` to it, in one write.

        A probe with an outcome replaces the pending probe it resolves (see
        :meth:`ModelRecord.with_probe`). A missing record is created (``untested``),
        so a search can record attempts for a model not synced yet.

        Raises:
            TypeError: ``changes`` names a field ModelRecord does not have.
        """
        bad = sorted(set(changes) - _CHANGEABLE)
        if bad:
            raise TypeError(f"append_probe() cannot change {', '.join(bad)}")
        scope = self._scope(server)

        def fn(old: Optional[ModelRecord]) -> ModelRecord:
            record = old if old is not None else ModelRecord(key=key, server=scope)
            return dataclasses.replace(record.with_probe(probe), **changes)

        stored = self.update(key, fn, server=scope)
        assert stored is not None
        return stored

    def sync(self, client: Any) -> SyncResult:
        """Bring the records of ``client.base_url`` in line with ``client.list_models()``.

        New models are added as ``untested``; known ones get their identity and declared
        context refreshed (values the server does not send are kept) and ``last_seen``;
        models no longer listed are marked ``vanished`` and un-marked when they return.
        Test results and probes are never dropped.
        """
        infos: List[ModelInfo] = list(client.list_models())
        scope = normalize_server(str(client.base_url))
        listed: Dict[str, ModelInfo] = {info.key: info for info in infos if info.key}
        now = time.time()
        result = SyncResult(scope, [], [], [], [])

        def apply(doc: Document) -> None:
            models = doc.servers.setdefault(scope, {})
            for key, info in listed.items():
                old = models.get(key)
                if old is None:
                    new = ModelRecord.from_model_info(info, scope)
                    models[key] = dataclasses.replace(new, last_seen=now)
                    result.added.append(key)
                    continue
                changes = _refreshed(old, info)
                if old.vanished:
                    changes["vanished"] = False
                    result.returned.append(key)
                if changes:
                    result.updated.append(key)
                models[key] = dataclasses.replace(old, last_seen=now, **changes)
            for key, old in list(models.items()):
                if key not in listed and not old.vanished:
                    models[key] = dataclasses.replace(old, vanished=True)
                    result.vanished.append(key)

        self._write(apply)
        for names in (result.added, result.updated, result.vanished, result.returned):
            names.sort()
        log.info(
            "synced %s: %d added, %d updated, %d vanished",
            scope,
            len(result.added),
            len(result.updated),
            len(result.vanished),
        )
        return result

    # -- internals -------------------------------------------------------------

    def _scope(self, server: Optional[str]) -> str:
        return self._server if server is None else normalize_server(server)

    def _read(self) -> Document:
        """Parse the file as it is now, reusing the last parse when the file is unchanged."""
        try:
            handle = _atomic.open_for_read(self._path)
        except FileNotFoundError:
            return Document()
        except OSError as exc:
            raise RegistryError(f"cannot read the registry file {self._path}: {exc}") from exc
        with handle:
            st = os.fstat(handle.fileno())
            signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            cached = self._cache
            if cached is not None and cached[0] == signature:
                return cached[1]
            data = handle.read()
        doc = parse_document(data, self._path, self._server)
        if time.time_ns() - st.st_mtime_ns > _RACY_WINDOW_NS:
            self._cache = (signature, doc)
        return doc

    def _write(self, apply: Callable[[Document], _T]) -> _T:
        """Run ``apply`` on a fresh parse of the file under both locks, then save if changed."""
        me = threading.get_ident()
        if self._writer == me:
            raise RegistryError(
                "the registry was written to from inside an update() callback; "
                "return the new record from the callback instead"
            )
        if not self._lock.acquire(timeout=self.lock_timeout_s):
            raise RegistryError(
                f"timed out after {self.lock_timeout_s:g} s waiting for another thread "
                f"writing the registry {self._path}"
            )
        try:
            self._writer = me
            with FileLock(self.lock_path, timeout_s=self.lock_timeout_s):
                return self._write_locked(apply)
        finally:
            self._writer = None
            self._lock.release()

    def _write_locked(self, apply: Callable[[Document], _T]) -> _T:
        path = self._path
        try:
            old: Optional[bytes] = _atomic.read_bytes(path)
        except FileNotFoundError:
            old = None
        except OSError as exc:
            raise RegistryError(f"cannot read the registry file {path}: {exc}") from exc
        # Parsing first means a corrupt or newer file raises before anything is written.
        doc = Document() if old is None else parse_document(old, path, self._server)
        result = apply(doc)
        new = dump_document(doc, path)
        if new == old:
            return result
        try:
            _atomic.remove_stale_temps(path)
            if old is not None:
                _atomic.keep_backup(path, self.backup_path)
            _atomic.atomic_write(path, new)
        except OSError as exc:
            raise RegistryError(f"cannot write the registry file {path}: {exc}") from exc
        return result


_CHANGEABLE = frozenset(f.name for f in dataclasses.fields(ModelRecord)) - {"key", "server"}


def _owned(record: ModelRecord, key: str, scope: str) -> ModelRecord:
    """Return ``record`` with its server set to ``scope``, checking it belongs there."""
    if record.key != key:
        raise ValueError(f"update({key!r}) got back a record for {record.key!r}")
    if record.server and normalize_server(record.server) != scope:
        raise ValueError(f"update() on {scope} got back a record for {record.server}")
    try:  # what would be refused on the next read is refused now, before it is written
        ModelRecord.from_dict(record.to_dict())
    except RecordFieldError as exc:
        raise RecordFieldError(
            f"the record of model {key!r} on server {scope}: {exc}; nothing was written",
            field=exc.field,
        ) from exc
    return record if record.server == scope else dataclasses.replace(record, server=scope)


def _refreshed(old: ModelRecord, info: ModelInfo) -> Dict[str, Any]:
    """Return the identity changes ``info`` brings to ``old`` (``None`` values ignored)."""
    changes: Dict[str, Any] = {}
    fresh = [(name, getattr(info, name)) for name in IDENTITY_FIELDS]
    fresh.append(("declared_context", info.max_context_length))
    for name, value in fresh:
        if value is not None and value != getattr(old, name):
            changes[name] = value
    return changes
