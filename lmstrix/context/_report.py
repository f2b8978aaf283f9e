"""The results a context search hands back: :class:`ContextReport` and :class:`SearchProgress`.

They are defined here and exported by :mod:`lmstrix.context` (and :mod:`lmstrix`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from ..registry._fingerprint import Fingerprint
from ..registry._records import ModelRecord, ProbeRecord
from ..registry._speed import SpeedPoint

if TYPE_CHECKING:
    from ..types import ModelInfo

__all__ = ["ContextReport", "SearchProgress", "fresh_record", "progress_step"]


@dataclass(frozen=True)
class SearchProgress:
    """One step of a search, for progress displays: a load or a probe and its outcome.

    ``server`` is the base URL of the server searched (searches of several servers run
    at once and report through one callback)."""

    model: str
    kind: str
    size: int
    ok: Optional[bool]
    failure: Optional[str]
    loads: int
    requests: int
    message: str
    server: Optional[str] = None


@dataclass(frozen=True)
class ContextReport:
    """The result of :func:`find_context_limit`.

    ``declared_context`` is what the model says; ``loadable_context`` the largest
    context it loaded at as asked (``None`` without a load endpoint);
    ``working_context`` the largest prompt, in the server's tokens, it still answered
    right. ``loads`` counts load attempts (failed ones included), ``requests`` every
    HTTP request of the search, ``prompt_tokens`` the prompt tokens sent, ``seconds``
    the wall time, and ``probes`` every step. ``model`` and ``server`` say what was
    searched; ``status`` is ``done`` or ``failed`` and ``reason`` says why it failed (or
    notes a limitation, such as a server that cannot load models); ``chars_per_token``
    is the calibrated ratio; ``can_load`` is False on servers without a load endpoint;
    ``resumed`` is True when earlier results from the registry were used.
    ``fingerprint`` is what the limits depend on, ``speed`` the prefill/decode speed at
    each answered probe, ``warnings`` what may skew the result (other models loaded).
    """

    model: str
    server: str
    declared_context: Optional[int]
    loadable_context: Optional[int]
    working_context: Optional[int]
    status: str
    reason: str = ""
    loads: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0
    chars_per_token: Optional[float] = None
    can_load: bool = True
    resumed: bool = False
    probes: Tuple[ProbeRecord, ...] = field(default=(), repr=False)
    fingerprint: Optional[Fingerprint] = None
    speed: Tuple[SpeedPoint, ...] = field(default=(), repr=False)
    warnings: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary (the ``--json`` shape of ``lmstrix test``)."""
        return {
            "key": self.model,
            "server": self.server,
            "declared_context": self.declared_context,
            "loadable_context": self.loadable_context,
            "working_context": self.working_context,
            "status": self.status,
            "reason": self.reason,
            "loads": self.loads,
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "seconds": round(self.seconds, 3),
            "chars_per_token": self.chars_per_token,
            "can_load": self.can_load,
            "resumed": self.resumed,
            "probes": [p.to_dict() for p in self.probes],
            "fingerprint": self.fingerprint.to_dict() if self.fingerprint else None,
            "speed": [p.to_dict() for p in self.speed],
            "warnings": list(self.warnings),
        }


def progress_step(
    key: str, probe: ProbeRecord, what: str, loads: int, requests: int, server: str
) -> SearchProgress:
    """The :class:`SearchProgress` of one finished step (a load or a probe)."""
    outcome = "ok" if probe.ok else f"failed ({probe.failure})"
    return SearchProgress(
        model=key,
        kind=probe.kind,
        size=probe.size,
        ok=probe.ok,
        failure=probe.failure,
        loads=loads,
        requests=requests,
        message=f"{key}: {what}: {outcome}",
        server=server,
    )


def fresh_record(rec: Optional[ModelRecord], info: ModelInfo, server: str) -> ModelRecord:
    """A record starting a new search: identity refreshed, old results cleared."""
    base = ModelRecord.from_model_info(info, server)
    if rec is not None:
        base = replace(base, probes=rec.probes)  # history is kept, bounds are not
    return replace(base, status="testing")
