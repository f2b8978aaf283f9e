"""How a pool chooses: which servers offer a model, which of them suit the call, in what order.

Pure bookkeeping over the members' cached model lists and counters (a member asks its
server only when its list is stale); the waiting for a free slot is the pool's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, FrozenSet, List, Optional, Sequence, Tuple

from ..errors import APIError
from ..registry._fit import fit_problem
from ._routing import Candidate, Preference, capability_problem, measured_speed

if TYPE_CHECKING:
    from ..registry import Registry
    from ..types import ModelInfo
    from ._member import Member

__all__ = ["offers", "rank", "suitable"]

Offer = Tuple["Member", "ModelInfo"]


def offers(
    members: Sequence[Member], key: str, *, tried: Sequence[Member], cooling: bool = False
) -> List[Offer]:
    """The members not yet ``tried`` that offer ``key``: the healthy ones, or (with
    ``cooling``, when no healthy one does) those sitting out a cooldown."""
    found: List[Offer] = []
    for member in members:
        if member in tried or member.healthy() == cooling:
            continue
        try:
            info = member.find(key)
        except APIError:  # unreachable now: the member counted the failure
            continue
        if info is not None:
            found.append((member, info))
    return found


def suitable(
    key: str,
    candidates: Sequence[Offer],
    *,
    requires: FrozenSet[str],
    registry: Optional[Registry],
    prompt: Any,
    max_tokens: Optional[int],
) -> Tuple[List[Offer], List[str]]:
    """``(offers that suit, why the others do not)``: the model lists every required
    capability, and its tested working context there holds the prompt."""
    fits: List[Offer] = []
    problems: List[str] = []
    for member, info in candidates:
        problem = capability_problem(info, requires)
        if problem is None and registry is not None and prompt:
            record = registry.get(info.key, server=member.url)
            problem = fit_problem(record, prompt, max_tokens)
        if problem is None:
            fits.append((member, info))
        else:
            problems.append(f"{key} on {member.url}: {problem}")
    return fits, problems


def rank(
    offer: Offer,
    *,
    turn: int,
    members: Sequence[Member],
    prefer: Preference,
    registry: Optional[Registry],
) -> Tuple[Any, ...]:
    """Sort key: loaded first; the fastest measured (``prefer="speed"``); the most free
    slots; the fewest calls in flight; then round robin. A router function decides
    alone (round robin breaks its ties)."""
    member, info = offer
    slots, busy = member.slots(info)
    position = (members.index(member) - turn) % len(members)
    if callable(prefer):
        speed = measured_speed(registry, info.key, member.url)
        seen = Candidate(
            member.url,
            info.key,
            slots > 0,
            slots,
            slots - busy,
            member.in_flight(),
            speed,
            position,
        )
        return (prefer(seen), position)
    speed = measured_speed(registry, info.key, member.url) if prefer == "speed" else 0.0
    return (slots == 0, -speed, -(slots - busy), member.in_flight(), position)
