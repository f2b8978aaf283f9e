"""What a context search reports: :class:`ContextReport`, and :class:`SearchProgress` steps.

Both are public through :mod:`lmstrix.context`, where :func:`find_context_limit` makes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from ._records import ProbeRecord

__all__ = ["ContextReport", "SearchProgress"]


@dataclass(frozen=True)
class SearchProgress:
    """One step of a search, for progress displays: a load or a probe and its outcome."""

    model: str
    kind: str
    size: int
    ok: Optional[bool]
    failure: Optional[str]
    loads: int
    requests: int
    message: str


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
        }
