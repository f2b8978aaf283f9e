"""What a model's measured limits depend on: the :class:`Fingerprint` of a test.

A context search records, beside the limits, the server API and version, the model
file's format, quantization and size, the parallel slots of the instance it tested, and
the other instances that were loaded at the time (a loaded neighbour takes memory, so
it lowers the loadable limit). :func:`fingerprint_changes` compares a recorded
fingerprint with the server's current one; :func:`mark_stale` flags the records whose
fingerprint no longer matches, so ``lmstrix list`` can show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .._coerce import int_or_none as _int
from .._coerce import str_or_none as _str

if TYPE_CHECKING:
    from ..types import Completion, LoadedInstance, ModelInfo

__all__ = [
    "Fingerprint",
    "fingerprint_changes",
    "neighbours_of",
    "server_version_of",
]


_COMPARED: Tuple[str, ...] = (
    "api",
    "server_version",
    "format",
    "quantization",
    "size_bytes",
    "parallel",
)
"""The fields whose change makes recorded limits stale (``neighbours`` is reported apart)."""


@dataclass(frozen=True)
class Fingerprint:
    """The conditions a context test ran under.

    ``api`` is the server's API family (``v1`` = LM Studio 0.4+, ``v0`` = 0.3.x,
    ``openai``); ``server_version`` the runtime a reply named (LM Studio's ``runtime``
    block, llama.cpp's build in ``system_fingerprint``), ``None`` when no reply said.
    ``format``, ``quantization`` and ``size_bytes`` describe the model file;
    ``parallel`` is the tested instance's parallel slots (``None`` when the server did not
    say); ``neighbours`` the other instances loaded during the test, as
    ``"instance-id@context"`` strings.
    """

    api: Optional[str] = None
    server_version: Optional[str] = None
    format: Optional[str] = None
    quantization: Optional[str] = None
    size_bytes: Optional[int] = None
    parallel: Optional[int] = None
    neighbours: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dictionary."""
        return {
            "api": self.api,
            "server_version": self.server_version,
            "format": self.format,
            "quantization": self.quantization,
            "size_bytes": self.size_bytes,
            "parallel": self.parallel,
            "neighbours": list(self.neighbours),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        """Build from :meth:`to_dict` output; bad values read as ``None``."""
        raw = data.get("neighbours")
        neighbours = raw if isinstance(raw, list) else []
        return cls(
            api=_str(data.get("api")),
            server_version=_str(data.get("server_version")),
            format=_str(data.get("format")),
            quantization=_str(data.get("quantization")),
            size_bytes=_int(data.get("size_bytes")),
            parallel=_int(data.get("parallel")),
            neighbours=tuple(str(n) for n in neighbours if isinstance(n, str)),
        )


def neighbours_of(models: Sequence[ModelInfo], own: Optional[str]) -> Tuple[str, ...]:
    """Every loaded instance in ``models`` except the one with id ``own``, sorted."""
    found: List[str] = []
    for info in models:
        for inst in info.loaded_instances:
            if inst.id != own:
                found.append(_describe(inst))
    return tuple(sorted(found))


def _describe(inst: LoadedInstance) -> str:
    return inst.id if inst.context_length is None else f"{inst.id}@{inst.context_length}"


def server_version_of(answer: Completion) -> Optional[str]:
    """The server or runtime version a reply names, if any.

    LM Studio's native replies carry ``runtime: {name, version}``; llama.cpp's
    ``system_fingerprint`` is its build (LM Studio puts the model id there instead,
    which is ignored).
    """
    raw = answer.raw
    runtime = raw.get("runtime")
    if isinstance(runtime, Mapping):
        name, version = _str(runtime.get("name")), _str(runtime.get("version"))
        if version:
            return f"{name} {version}" if name else version
    build = _str(raw.get("system_fingerprint"))
    served = {answer.model, _str(raw.get("model"))}
    if build and build not in served and "/" not in build:
        return build
    return None


def fingerprint_changes(old: Optional[Fingerprint], new: Fingerprint) -> List[str]:
    """What changed from ``old`` to ``new``, one line per field, e.g. ``quantization: a -> b``.

    A field counts only when both sides know it (a server that does not report the
    parallel slots of an unloaded model changes nothing). ``neighbours`` is not
    compared: it describes the test, not the model. No ``old`` (a record from before
    fingerprints) gives no changes.
    """
    if old is None:
        return []
    changes: List[str] = []
    for name in _COMPARED:
        before, after = getattr(old, name), getattr(new, name)
        if before is not None and after is not None and before != after:
            changes.append(f"{name}: {before} -> {after}")
    return changes
