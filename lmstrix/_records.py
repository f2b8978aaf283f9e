"""The records the registry keeps: one :class:`ModelRecord` per model and server.

Both are frozen dataclasses; change them with :func:`dataclasses.replace` or the helper
methods, which return new objects. ``from_dict`` is tolerant: a field of the wrong type
reads as its default, so a hand-edited file never crashes a reader.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, Mapping, Optional, Tuple

from ._coerce import bool_or_none as _bool
from ._coerce import float_or_none as _float
from ._coerce import int_or_none as _int
from ._coerce import str_or_none as _str
from ._fingerprint import Fingerprint
from ._speed import SpeedPoint

if TYPE_CHECKING:
    from .types import ModelInfo

__all__ = [
    "FAILURE_KINDS",
    "PROBE_KINDS",
    "RECHECK_OUTCOMES",
    "STATUSES",
    "ModelRecord",
    "ProbeRecord",
]

STATUSES: Tuple[str, ...] = ("untested", "testing", "done", "failed")
"""The values of :attr:`ModelRecord.status`."""

RECHECK_OUTCOMES: Tuple[str, ...] = ("", "confirmed", "drifted", "inconclusive")
"""The values of :attr:`ModelRecord.recheck` (``""``: never rechecked)."""

PROBE_KINDS: Tuple[str, ...] = ("load", "prompt")
"""The values of :attr:`ProbeRecord.kind`."""

FAILURE_KINDS: Tuple[str, ...] = (
    "load_failed",
    "auto_fit",
    "overflow_error",
    "truncated",
    "wrong_answer",
    "empty",
    "timeout",
    "disconnected",
    "crashed",
    "server_error",
)
"""The values of :attr:`ProbeRecord.failure` (``None`` when the probe passed)."""


@dataclass(frozen=True)
class ProbeRecord:
    """One step of a context search: a load attempt or a prompt probe, and its outcome.

    ``size`` is the requested context length (``kind="load"``) or the target prompt
    length in tokens (``kind="prompt"``). ``ok`` is ``True`` or ``False`` once the
    outcome is known and ``None`` while the step is under way: a search writes that mark
    before a risky step, so a crash leaves "attempted, no result" behind. ``failure`` is
    one of :data:`FAILURE_KINDS` when ``ok`` is ``False``. ``at`` is a Unix time.
    """

    kind: str
    size: int
    ok: Optional[bool] = None
    failure: Optional[str] = None
    applied_context: Optional[int] = None
    prompt_tokens: Optional[int] = None
    seconds: Optional[float] = None
    trial: int = 0
    detail: str = ""
    at: float = field(default_factory=time.time)

    @property
    def pending(self) -> bool:
        """True when the step was attempted and has no result (yet)."""
        return self.ok is None

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dictionary."""
        return {
            "kind": self.kind,
            "size": self.size,
            "ok": self.ok,
            "failure": self.failure,
            "applied_context": self.applied_context,
            "prompt_tokens": self.prompt_tokens,
            "seconds": self.seconds,
            "trial": self.trial,
            "detail": self.detail,
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProbeRecord:
        """Build from :meth:`to_dict` output; unknown keys are ignored, bad values defaulted."""
        at = _float(data.get("at"))
        return cls(
            kind=_str(data.get("kind")) or "",
            size=_int(data.get("size")) or 0,
            ok=_bool(data.get("ok")),
            failure=_str(data.get("failure")),
            applied_context=_int(data.get("applied_context")),
            prompt_tokens=_int(data.get("prompt_tokens")),
            seconds=_float(data.get("seconds")),
            trial=_int(data.get("trial")) or 0,
            detail=_str(data.get("detail")) or "",
            at=0.0 if at is None else at,
        )


_OPTIONAL_STR_FIELDS = ("display_name", "type", "architecture", "quantization", "format")
_OPTIONAL_INT_FIELDS = (
    "size_bytes",
    "declared_context",
    "loadable_context",
    "working_context",
    "load_good",
    "load_bad",
    "work_good",
    "work_bad",
)
_OPTIONAL_FLOAT_FIELDS = ("tested_at", "chars_per_token", "last_seen", "rechecked_at")

IDENTITY_FIELDS: Tuple[str, ...] = (
    "display_name",
    "type",
    "architecture",
    "quantization",
    "format",
    "size_bytes",
)
"""The :class:`ModelRecord` fields that describe the model file (refreshed by ``sync``)."""


@dataclass(frozen=True)
class ModelRecord:
    """What the registry knows about one model on one server.

    Identity (``display_name`` ... ``size_bytes``) and ``declared_context`` come from the
    server; ``loadable_context`` (largest context that loads as asked) and
    ``working_context`` (largest prompt, in the server's tokens, still answered right)
    come from the context search. ``load_good``/``load_bad`` and ``work_good``/
    ``work_bad`` are the search bounds so far (largest size known good, smallest known
    bad), which let an interrupted search resume. ``vanished`` is set when the server no
    longer lists the model; nothing is deleted. ``extra`` keeps keys written by newer
    versions of lmstrix, so they survive a round trip.

    ``fingerprint`` is what the limits depend on (server, model file, parallel slots,
    neighbours loaded during the test); ``speed`` the prefill/decode speed at each probed
    prompt size. ``stale`` is set when the limits may no longer hold: the fingerprint
    changed, or a recheck found drift; ``stale_reason`` says which (``status`` stays
    ``done``). ``recheck`` is the outcome of the latest recheck (one of
    :data:`RECHECK_OUTCOMES`) and ``rechecked_at`` its Unix time.
    """

    key: str
    server: str = ""
    display_name: Optional[str] = None
    type: Optional[str] = None
    architecture: Optional[str] = None
    quantization: Optional[str] = None
    format: Optional[str] = None
    size_bytes: Optional[int] = None
    declared_context: Optional[int] = None
    loadable_context: Optional[int] = None
    working_context: Optional[int] = None
    status: str = "untested"
    failure_reason: str = ""
    tested_at: Optional[float] = None
    chars_per_token: Optional[float] = None
    load_good: Optional[int] = None
    load_bad: Optional[int] = None
    work_good: Optional[int] = None
    work_bad: Optional[int] = None
    probes: Tuple[ProbeRecord, ...] = ()
    vanished: bool = False
    last_seen: Optional[float] = None
    fingerprint: Optional[Fingerprint] = None
    speed: Tuple[SpeedPoint, ...] = ()
    stale: bool = False
    stale_reason: str = ""
    recheck: str = ""
    rechecked_at: Optional[float] = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_model_info(cls, info: ModelInfo, server: str) -> ModelRecord:
        """Start an ``untested`` record for a model the server lists."""
        return cls(
            key=info.key,
            server=server,
            display_name=info.display_name,
            type=info.type,
            architecture=info.architecture,
            quantization=info.quantization,
            format=info.format,
            size_bytes=info.size_bytes,
            declared_context=info.max_context_length,
        )

    @property
    def pending_probes(self) -> Tuple[ProbeRecord, ...]:
        """Probes attempted with no result: a crash (or a search still running) left them."""
        return tuple(p for p in self.probes if p.ok is None)

    def with_probe(self, probe: ProbeRecord) -> ModelRecord:
        """Return a copy with ``probe`` added to the history.

        A probe with an outcome replaces the latest pending probe of the same kind, size
        and trial (the "attempting" mark it resolves); otherwise it is appended.
        """
        probes = list(self.probes)
        if probe.ok is not None:
            for index in range(len(probes) - 1, -1, -1):
                old = probes[index]
                if (
                    old.ok is None
                    and old.kind == probe.kind
                    and old.size == probe.size
                    and old.trial == probe.trial
                ):
                    probes[index] = probe
                    return replace(self, probes=tuple(probes))
        probes.append(probe)
        return replace(self, probes=tuple(probes))

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dictionary; ``extra`` keys are merged in (known keys win)."""
        data: Dict[str, Any] = {k: v for k, v in self.extra.items() if k not in _FIELD_NAMES}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name in ("probes", "speed"):
                value = [item.to_dict() for item in value]
            elif f.name == "fingerprint" and value is not None:
                value = value.to_dict()
            data[f.name] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelRecord:
        """Build from :meth:`to_dict` output; unknown keys go to ``extra``."""
        values: Dict[str, Any] = {}
        for name in _OPTIONAL_STR_FIELDS:
            values[name] = _str(data.get(name))
        for name in _OPTIONAL_INT_FIELDS:
            values[name] = _int(data.get(name))
        for name in _OPTIONAL_FLOAT_FIELDS:
            values[name] = _float(data.get(name))
        raw_probes = data.get("probes")
        probes = raw_probes if isinstance(raw_probes, list) else []
        raw_speed = data.get("speed")
        speed = raw_speed if isinstance(raw_speed, list) else []
        raw_print = data.get("fingerprint")
        print_ = Fingerprint.from_dict(raw_print) if isinstance(raw_print, Mapping) else None
        return cls(
            key=_str(data.get("key")) or "",
            server=_str(data.get("server")) or "",
            status=_str(data.get("status")) or "untested",
            failure_reason=_str(data.get("failure_reason")) or "",
            probes=tuple(ProbeRecord.from_dict(p) for p in probes if isinstance(p, Mapping)),
            vanished=_bool(data.get("vanished")) or False,
            fingerprint=print_,
            speed=tuple(SpeedPoint.from_dict(p) for p in speed if isinstance(p, Mapping)),
            stale=_bool(data.get("stale")) or False,
            stale_reason=_str(data.get("stale_reason")) or "",
            recheck=_str(data.get("recheck")) or "",
            extra={k: v for k, v in data.items() if k not in _FIELD_NAMES},
            **values,
        )


_FIELD_NAMES: FrozenSet[str] = frozenset(f.name for f in fields(ModelRecord))
