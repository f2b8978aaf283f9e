"""The context-limit search strategy, free of I/O: it decides, a :class:`Prober` acts.

Two limits are searched together (see ``docs/user-guide/context-search.md``):

* the **loadable** limit, by loads: the top first, then bisection between the best
  good and the smallest bad load until they are within ``resolution``. Each split
  keeps the fewest loads the worst case needs, and within that leans by what a
  failure costs: high after cheap refusals, low after crashes;
* the **working** limit, by prompt length on the instance that is loaded, without
  reloads: grow the prompt (doubling, one needle and one filler stream so each probe
  extends the server's cached prefix), then bisect downwards after the first failure,
  and confirm the boundary with the other trials' needles.

The working search runs on every successful load that can hold a longer prompt than
the last one could, so when the loads are done the working limit is known too, with
no reload. Keeping this module pure lets tests drive it against random truths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Protocol, Tuple

from ._working_search import SANITY_TOKENS, WorkSearch

__all__ = [
    "SANITY_TOKENS",
    "Bounds",
    "LoadOutcome",
    "ProbeOutcome",
    "Prober",
    "SearchResult",
    "after_load",
    "after_probe",
    "run_search",
]

LEAN = 0.1  # how far a split leans from the middle, as a share of the interval


@dataclass(frozen=True)
class LoadOutcome:
    """What a load attempt did: ``ok``; ``applied`` context when something got loaded."""

    ok: bool
    applied: Optional[int] = None
    failure: Optional[str] = None
    # A refusal before anything was allocated (LM Studio's memory guardrail answers
    # 4xx at once), as opposed to a load that ran and crashed (5xx) or timed out.
    refused: bool = False


@dataclass(frozen=True)
class ProbeOutcome:
    """What a prompt probe did: ``ok`` and the prompt size the server counted.

    ``fits`` is False when the instance could not hold the prompt and its answer (an
    overflow error, a silent truncation, a count above the instance's ceiling): then
    the outcome says nothing about the model at that size.
    """

    ok: bool
    tokens: int
    failure: Optional[str] = None
    fits: bool = True


class Prober(Protocol):
    """The actions the strategy needs; :mod:`lmstrix.context` implements them on a client."""

    def load(self, size: int) -> LoadOutcome:
        """Unload what this search loaded, then try to load at ``size``."""
        ...

    def probe(self, tokens: int, trial: int) -> ProbeOutcome:
        """Send a needle probe of about ``tokens`` tokens (needle/filler set ``trial``)."""
        ...

    def ceiling(self) -> Optional[int]:
        """The largest probe the current instance can hold (None: unknown)."""
        ...


@dataclass
class Bounds:
    """What is known so far: largest good and smallest bad sizes, loads and prompts."""

    load_good: Optional[int] = None
    load_bad: Optional[int] = None
    work_good: Optional[int] = None
    work_bad: Optional[int] = None
    failed: str = ""


@dataclass(frozen=True)
class SearchResult:
    """The outcome: limits (``None`` when not found) and why the search stopped."""

    loadable: Optional[int]
    working: Optional[int]
    status: str
    reason: str = ""


def run_search(
    prober: Prober,
    *,
    top: Optional[int],
    floor: int,
    resolution: int,
    trials: int,
    can_load: bool,
    bounds: Optional[Bounds] = None,
) -> SearchResult:
    """Find the loadable and working limits; ``bounds`` carries (and receives) progress.

    ``top`` is the largest load size worth trying (declared maximum or the caller's
    cap); ``floor`` the smallest load size tried. Without ``can_load`` only the
    working limit of the instance already loaded is searched.
    """
    state = bounds if bounds is not None else Bounds()
    work = WorkSearch(prober, state, resolution, max(1, trials))
    if not can_load:
        work.run(final=True)
        if state.failed:
            return SearchResult(None, None, "failed", state.failed)
        return SearchResult(None, state.work_good, "done", "")
    if top is None:
        raise ValueError("a load search needs a top size (declared or max_context)")
    floor = min(floor, top)
    searched_at = _load_search(prober, state, work, top, floor, resolution)
    good, bad = state.load_good, state.load_bad
    close = searched_at is not None and bad is not None and bad - searched_at <= resolution
    if not state.failed and not work.done and good is not None:
        if close and work.trials == 1:
            # One needle needs no confirmation: the ceiling reached on an instance
            # within ``resolution`` of the loadable limit is within it of the truth.
            work.done = True
        else:
            # The working search has not run on the instance at the loadable limit
            # (the bounds came from an earlier run, or the last load failed): one load
            # there lets it finish.
            outcome = prober.load(good)
            if outcome.applied is not None:
                work.run(final=True)
    if state.failed:
        return SearchResult(state.load_good, state.work_good, "failed", state.failed)
    return SearchResult(state.load_good, state.work_good, "done", "")


def _load_search(
    prober: Prober, state: Bounds, work: WorkSearch, top: int, floor: int, resolution: int
) -> Optional[int]:
    """Bisect the loads; return the largest loaded context the working search ran on."""
    searched_at: Optional[int] = None
    refusals = crashes = 0
    while not state.failed and not _settled(state, top, resolution):
        good, bad = state.load_good, state.load_bad
        if bad is None:
            size = top
        elif good is None and bad <= floor:
            # Resumed with a failure at or below the smallest load size (a load that
            # took the server down, say): nothing smaller is worth trying.
            state.failed = f"the model does not load even at {bad} tokens of context"
            return searched_at
        else:
            # A working search waiting for a larger instance wants the last load to
            # succeed; cheap refusals make failures the better bet, crashes successes.
            pending = work.started and not work.done
            lean = -1 if crashes > refusals else (1 if refusals else 0)
            size = _split(good, bad, floor, resolution, lean, pending)
        outcome = prober.load(size)
        state.load_good, state.load_bad = after_load(good, bad, size, outcome)
        if not outcome.ok and outcome.applied is None:  # refused, crashed, timed out
            refusals += outcome.refused
            crashes += not outcome.refused
            if size <= floor:
                state.failed = f"the model does not load even at {size} tokens of context"
                return searched_at
        settled = _settled(state, top, resolution)
        if outcome.applied is not None and (not work.started or settled):
            # The first instance gets the working search; once it has reached an
            # instance's ceiling, only the instance at the loadable limit is worth the
            # prefill of a longer prompt (a new instance starts with an empty cache).
            work.run(final=settled)
            searched_at = max(outcome.applied, searched_at or 0)
    return searched_at


def after_load(
    good: Optional[int], bad: Optional[int], size: int, outcome: LoadOutcome
) -> Tuple[Optional[int], Optional[int]]:
    """The load bounds ``(good, bad)`` once a load at ``size`` ended with ``outcome``.

    A success raises the best good, a failure lowers the smallest bad. An auto-fit (the
    server loaded, but less than ``size``) is the server's own answer to what fits here:
    that size becomes the boundary, taken as the limit rather than bisected again with
    more (risky) loads.
    """
    if outcome.ok:
        good = max(size, good or 0)
        # A success at or above a recorded failure (one that was transient after all)
        # clears it: the bounds stay ordered, good < bad.
        return good, bad if bad is None or bad > good else None
    if outcome.applied is not None and outcome.applied < size:
        fit = max(outcome.applied, good or 0)
        return fit, fit + 1
    bad = size if bad is None else min(bad, size)
    # A failure at or below the recorded good (the machine changed) outdates it.
    return (good if good is None or good < bad else None), bad


def after_probe(
    good: Optional[int], bad: Optional[int], outcome: ProbeOutcome
) -> Tuple[Optional[int], Optional[int]]:
    """The prompt bounds ``(good, bad)`` a registry keeps once a probe (of any needle)
    ended with ``outcome``; both in the server's tokens, as the server counted them.

    A pass raises the best good, a failure lowers the smallest bad; a prompt the
    instance could not hold changes neither. They stay ordered (good < bad): a pass at
    or above a recorded failure clears that failure (it was noise), and a failure at or
    below the recorded good clears the good.
    """
    if not outcome.fits:
        return good, bad
    if outcome.ok:
        good = max(outcome.tokens, good or 0)
        return good, bad if bad is None or bad > good else None
    bad = outcome.tokens if bad is None else min(bad, outcome.tokens)
    return (good if good is None or good < bad else None), bad


def _split(
    good: Optional[int], bad: int, floor: int, resolution: int, lean: int, pending: bool
) -> int:
    """The next load size between the best good (or the unverified floor) and ``bad``.

    The search ends when ``bad - good <= resolution``: ``good`` is then within
    ``resolution`` of the limit, which lies below ``bad``. An interval of ``n``
    resolution-wide buckets needs ``steps = ceil(log2(n))`` more loads in the worst
    case, and any size that leaves at most ``2 ** (steps - 1)`` buckets on either side
    keeps it at that; plain midpoints can cost one more. An unverified floor counts as
    one more bucket ("nothing loads", settled by a load at the floor).

    Within the sizes that keep the worst case, ``lean`` moves the split from the middle
    by ``LEAN`` of the interval: 1 up (failures have been cheap refusals, while a
    success costs a whole load), -1 down (failures crash after a whole load, and a
    smaller load costs less). The lean stays mild: where the worst case leaves much
    room (an interval just above a power of two buckets), a lopsided split would still
    keep the worst case but raise the loads most limits need.

    The last load, while the working search waits for a larger instance
    (``pending``), takes the lowest: it then likely succeeds, and the working search
    finishes on it instead of on one more load.
    """
    low = good if good is not None else floor - resolution
    steps = max(1, math.ceil(math.log2((bad - low) / resolution)))
    half = resolution << (steps - 1)
    smallest = max(bad - half, low + 1, floor)
    largest = max(smallest, min(low + half, bad - 1))
    if steps == 1 and pending:
        return smallest
    share = 0.5 + LEAN * lean
    return min(largest, max(smallest, low + int((bad - low) * share)))


def _settled(state: Bounds, top: int, resolution: int) -> bool:
    good, bad = state.load_good, state.load_bad
    if good is None:
        return False
    return good >= top or (bad is not None and bad - good <= resolution)
