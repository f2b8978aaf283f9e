"""What routing reads beside loaded models and free slots: capabilities and measured speed.

A pool (or a view of it from :meth:`~lmstrix.Pool.routed`) can require capabilities of
the model (``vision``, ``tool_use``, ``reasoning``, as the server's model list reports
them) and prefer the server where the model was measured fastest: the speed profile
the context search kept in the registry (decode tokens per second, the median over the
probes; prefill speed when decode was not measured).

``prefer`` may also be a router: a function given one :class:`Candidate` per server that
offers the model, returning a sort key (the smallest goes first). Plugins bring routers
by name (``lmstrix.plugins``; ``--prefer NAME`` in the CLI).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, FrozenSet, Iterable, Optional, Union

if TYPE_CHECKING:
    from ..registry import Registry
    from ..types import ModelInfo

__all__ = [
    "PREFERENCES",
    "Candidate",
    "Preference",
    "capability_problem",
    "check_prefer",
    "measured_speed",
    "required",
]

PREFERENCES = ("slots", "speed")
"""``slots``: the most free parallel slots first; ``speed``: the fastest measured first."""


@dataclass(frozen=True)
class Candidate:
    """One server that could take a call, as a router sees it.

    ``loaded``: the model has an instance there; ``slots``: its parallel slots (0 when
    not loaded); ``free_slots``: those not busy with this pool's calls; ``in_flight``:
    this pool's calls on the server; ``tokens_per_s``: the measured speed (0.0 when
    unknown); ``position``: the server's turn in the round robin (0 first).
    """

    server: str
    model: str
    loaded: bool
    slots: int
    free_slots: int
    in_flight: int
    tokens_per_s: float
    position: int


Router = Callable[[Candidate], Any]
Preference = Union[str, Router]


def check_prefer(prefer: Preference) -> Preference:
    """``prefer``, checked: one of :data:`PREFERENCES` or a router function."""
    if not callable(prefer) and prefer not in PREFERENCES:
        raise ValueError(f"prefer must be one of {PREFERENCES} or a function, not {prefer!r}")
    return prefer


def required(capabilities: Iterable[str]) -> FrozenSet[str]:
    """The capabilities asked for, checked."""
    if isinstance(capabilities, str):
        raise ValueError("requires= takes a list of capabilities, e.g. ['vision']")
    return frozenset(capabilities)


def capability_problem(info: ModelInfo, requires: FrozenSet[str]) -> Optional[str]:
    """Why ``info`` lacks a required capability (or None)."""
    missing = requires - info.capabilities
    if not missing:
        return None
    return f"the server does not list {', '.join(sorted(missing))} for it"


def measured_speed(registry: Optional[Registry], key: str, server: str) -> float:
    """Tokens per second measured for ``key`` on ``server`` (0.0 when not measured)."""
    if registry is None:
        return 0.0
    record = registry.get(key, server=server)
    if record is None or not record.speed:
        return 0.0
    decode = [p.decode_tps for p in record.speed if p.decode_tps]
    prefill = [p.prefill_tps for p in record.speed if p.prefill_tps]
    rates = decode or prefill
    return float(statistics.median(rates)) if rates else 0.0
