"""The records the registry keeps: one :class:`ModelRecord` per model and server.

Both are frozen dataclasses; change them with :func:`dataclasses.replace` or the helper
methods, which return new objects. ``from_dict`` checks types: a missing or ``null``
field takes its default, unknown keys are kept, and a field of the wrong type raises
:class:`RecordFieldError` naming it, so a hand-edited mistake is reported, never
silently reset and written back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Mapping, Optional, Tuple

from .._coerce import bool_or_none as _bool
from .._coerce import float_or_none as _float
from .._coerce import int_or_none as _int
from .._coerce import str_or_none as _str
from ..errors import RegistryError
from ._fingerprint import Fingerprint
from ._speed import SpeedPoint

if TYPE_CHECKING:
    from ..types import ModelInfo

__all__ = [
    "FAILURE_KINDS",
    "PROBE_KINDS",
    "RECHECK_OUTCOMES",
    "STATUSES",
    "ModelRecord",
    "ProbeRecord",
    "RecordFieldError",
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


class RecordFieldError(RegistryError, ValueError):
    """A record field of the wrong type; ``field`` names it (``probes[2].size`` in a probe)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


_KINDS: Dict[Callable[[Any], Any], str] = {
    _str: "a string",
    _int: "a whole number",
    _float: "a finite number",
    _bool: "true or false",
}


def _typed(data: Mapping[str, Any], name: str, convert: Callable[[Any], Any]) -> Any:
    """``data[name]`` checked by ``convert`` (one of the ``_coerce`` helpers); ``None``
    when missing or null; :class:`RecordFieldError` when of the wrong type."""
    value = data.get(name)
    if value is None:
        return None
    result = convert(value)
    if result is None:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise RecordFieldError(
            f"field {name!r} must be {_KINDS[convert]} or null, not {shown}", field=name
        )
    return result


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
        """Build from :meth:`to_dict` output; unknown keys are ignored, missing ones defaulted.

        Raises:
            RecordFieldError: a field has the wrong type.
        """
        at = _typed(data, "at", _float)
        return cls(
            kind=_typed(data, "kind", _str) or "",
            size=_typed(data, "size", _int) or 0,
            ok=_typed(data, "ok", _bool),
            failure=_typed(data, "failure", _str),
            applied_context=_typed(data, "applied_context", _int),
            prompt_tokens=_typed(data, "prompt_tokens", _int),
            seconds=_typed(data, "seconds", _float),
            trial=_typed(data, "trial", _int) or 0,
            detail=_typed(data, "detail", _str) or "",
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
        """Build from :meth:`to_dict` output; unknown keys go to ``extra``.

        A missing or ``null`` field takes its default.

        Raises:
            RecordFieldError: a field (or a probe's, ``probes[2].size``) has the wrong type.
        """
        values: Dict[str, Any] = {}
        for name in _OPTIONAL_STR_FIELDS:
            values[name] = _typed(data, name, _str)
        for name in _OPTIONAL_INT_FIELDS:
            values[name] = _typed(data, name, _int)
        for name in _OPTIONAL_FLOAT_FIELDS:
            values[name] = _typed(data, name, _float)
        raw_print = data.get("fingerprint")
        if raw_print is not None and not isinstance(raw_print, Mapping):
            raise RecordFieldError(
                f"field 'fingerprint' must be an object, not {type(raw_print).__name__}",
                field="fingerprint",
            )
        return cls(
            key=_typed(data, "key", _str) or "",
            server=_typed(data, "server", _str) or "",
            status=_typed(data, "status", _str) or "untested",
            failure_reason=_typed(data, "failure_reason", _str) or "",
            probes=_probes(data.get("probes")),
            vanished=_typed(data, "vanished", _bool) or False,
            fingerprint=None if raw_print is None else Fingerprint.from_dict(raw_print),
            speed=_speed_points(data.get("speed")),
            stale=_typed(data, "stale", _bool) or False,
            stale_reason=_typed(data, "stale_reason", _str) or "",
            recheck=_typed(data, "recheck", _str) or "",
            extra={k: v for k, v in data.items() if k not in _FIELD_NAMES},
            **values,
        )


def _speed_points(raw: Any) -> Tuple[SpeedPoint, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, Mapping) for p in raw):
        raise RecordFieldError("field 'speed' must be a list of objects", field="speed")
    return tuple(SpeedPoint.from_dict(p) for p in raw)


def _probes(raw: Any) -> Tuple[ProbeRecord, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RecordFieldError(
            f"field 'probes' must be a list of objects, not {type(raw).__name__}", field="probes"
        )
    probes = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise RecordFieldError(
                f"probe {index} must be an object, not {type(item).__name__}",
                field=f"probes[{index}]",
            )
        try:
            probes.append(ProbeRecord.from_dict(item))
        except RecordFieldError as exc:
            raise RecordFieldError(
                f"probe {index}: {exc}", field=f"probes[{index}].{exc.field}"
            ) from exc
    return tuple(probes)


_FIELD_NAMES: FrozenSet[str] = frozenset(f.name for f in fields(ModelRecord))
