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
from typing import Dict, List, Optional, Protocol, Tuple

__all__ = [
    "Bounds",
    "LoadOutcome",
    "ProbeOutcome",
    "Prober",
    "SearchResult",
    "after_load",
    "after_probe",
    "run_search",
]

# The first prompt probe: small, to calibrate characters per token and catch a model
# that answers nothing right before any large prompt is paid for.
SANITY_TOKENS = 256
GROWTH_DOUBLING_BELOW = 8192
# Failures that are the model's answer (as opposed to the server or the connection).
ANSWER_FAILURES = frozenset(("wrong_answer", "empty", "truncated", "overflow_error"))
GROWTH_STEP_DIV = 8
LEAN = 0.1  # how far a split leans from the middle, as a share of the interval
REFITS = 4  # re-sized retries of a needle that missed the size it should confirm
REFIT_DIV = 50  # the cut of a needle that did not fit, when the overshoot is unknown


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
    work = _WorkSearch(prober, state, resolution, max(1, trials))
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
    prober: Prober, state: Bounds, work: _WorkSearch, top: int, floor: int, resolution: int
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


def _grow(size: int) -> int:
    """The next probe size while growing: doubling while prompts are cheap, then
    smaller steps, since overshooting the working limit costs prefill in proportion."""
    return size * 2 if size < GROWTH_DOUBLING_BELOW else size + size // GROWTH_STEP_DIV


def _settled(state: Bounds, top: int, resolution: int) -> bool:
    good, bad = state.load_good, state.load_bad
    if good is None:
        return False
    return good >= top or (bad is not None and bad - good <= resolution)


class _WorkSearch:
    """The working-limit search on whatever instance is loaded; resumable across loads.

    Bisection runs on *targets* (the sizes asked for), which always shrink the
    interval; the reported size is what the server counted for the passing probe.
    A probe the instance cannot hold (an overflow, a truncation, a prompt that leaves
    no room for the answer) is no verdict on the model: it caps the search on this
    instance only (``cap``), and a larger instance lifts the cap. Only a failure on a
    prompt that fit (``bad``) is the model's, and goes to the registry.
    """

    def __init__(self, prober: Prober, state: Bounds, resolution: int, trials: int) -> None:
        self.prober = prober
        self.state = state
        self.resolution = resolution
        self.trials = trials
        # Needles in play: the trials', and at least two, so that one failed request
        # (a timeout, a server error) does not end the search at its first probe.
        self.needles = max(2, trials)
        self.lead = 0  # the needle the growth and bisection use (trial 0)
        good, bad = state.work_good, state.work_bad
        if good is not None and bad is not None and good >= bad:
            state.work_good = None  # an older, inconsistent record: trust the failure
        self.good: Optional[int] = state.work_good
        self.bad: Optional[int] = state.work_bad
        self.cap: Optional[int] = None  # smallest target the current instance cannot hold
        self.final = False  # True on the instance at the loadable limit (or the only one)
        self.strict = False  # once a boundary fails confirmation, every size needs all trials
        self.measured: Dict[int, int] = {}
        self.passes: List[int] = []  # targets that passed with the first needle
        self.confirmed: Dict[int, int] = {}  # targets every trial passed: the size shown
        if self.good is not None:
            self.measured[self.good] = self.good
            self.passes.append(self.good)
        # How far below the first needle's count another needle may pass and still
        # confirm the size (closer costs more nudges; the report takes the smallest).
        self.tolerance = max(1, resolution // 64)
        self.done = False

    @property
    def started(self) -> bool:
        """True once a probe has passed (on any instance, or in an earlier run)."""
        return self.good is not None

    def run(self, *, final: bool) -> None:
        """Search (or go on searching) on the current instance.

        ``final``: no larger instance will come, so the boundary is settled here even
        when it is this instance's ceiling rather than the model's limit.
        """
        if self.done or self.state.failed:
            return
        self.final = final
        self.cap = None
        ceiling = self.prober.ceiling()
        if self.good is None and not self._sanity(ceiling):
            return
        # Grow: each probe extends the previous one's prefix, so only new tokens cost.
        while self.bad is None and self.cap is None:
            good = self.good
            assert good is not None
            target = _grow(good) if ceiling is None else min(_grow(good), ceiling)
            if target <= good:
                self.cap = good + 1  # this instance holds no longer prompt
                break
            if target == ceiling:
                # Fill the instance: sizes are estimates (a probe ends on a whole word,
                # characters per token are calibrated), so nudge it to the ceiling.
                outcome = self._match(target, 0, ceiling, exact=True)
            else:
                outcome = self._probe(target, 0)
            self._judge(target, outcome)
        self._refine()

    def _sanity(self, ceiling: Optional[int]) -> bool:
        sanity = SANITY_TOKENS if ceiling is None else min(SANITY_TOKENS, ceiling)
        first = self.prober.probe(sanity, 0)
        for other in range(1, self.needles):
            # A timeout or a server error says nothing about the model: try another
            # needle. A wrong answer does, and no size can count above a failure.
            if first.ok or first.failure in ANSWER_FAILURES:
                break
            first = self.prober.probe(sanity, other)
            if first.ok:
                self.lead = other  # this needle works: lead with it
        if not first.ok:
            self.state.failed = (
                f"the model failed the smallest probe ({first.tokens} tokens: "
                f"{first.failure}); it may be broken or unsuited to this test"
            )
            return False
        self._pass(sanity, first.tokens)
        return True

    def _judge(self, target: int, outcome: ProbeOutcome) -> Optional[bool]:
        """Book a first-needle outcome: True passed, False failed, None did not fit."""
        if not outcome.fits:
            self.cap = target if self.cap is None else min(self.cap, target)
            return None
        if outcome.ok:
            self._pass(target, outcome.tokens)
            return True
        self._fail(target)
        return False

    def _pass(self, target: int, tokens: int) -> None:
        self.measured[target] = tokens
        if target not in self.passes:
            self.passes.append(target)
        if self.good is None or target > self.good:
            self.good = target
        self.state.work_good = self.measured[self.good]

    def _fail(self, target: int) -> None:
        if self.bad is None or target < self.bad:
            self.bad = target
        self.state.work_bad = self.bad

    def _upper(self) -> Tuple[int, bool]:
        """The smallest target known not to work here, and whether the model failed it
        (rather than this instance being too small for it)."""
        if self.cap is not None and (self.bad is None or self.cap < self.bad):
            return self.cap, False
        assert self.bad is not None
        return self.bad, True

    def _refine(self) -> None:
        while True:
            good = self.good
            assert good is not None
            upper, verdict = self._upper()
            while verdict or self.final:
                if upper - good <= self.resolution:
                    break
                self._probe_all(good + (upper - good) // 2)
                good = self.good
                assert good is not None
                upper, verdict = self._upper()
            if not verdict and not self.final:
                return  # this instance is too small: a larger one lets the search go on
            confirmed = self._confirm(good)
            if confirmed is None and not self.final:
                return  # a needle did not fit here: confirm on a larger instance
            if confirmed:
                self.done = True
                self.state.work_good = self.confirmed[good]
                return
            if confirmed is None:
                self.cap = good  # no needle-wide verdict fits here: look below
            else:
                self.strict = True
                self._fail(good)
            if not self._back_off(good):
                return

    def _back_off(self, good: int) -> bool:
        """Move the candidate below ``good``, which failed confirmation; False: none."""
        below = [t for t in self.passes if t < good]
        if not below and good > SANITY_TOKENS and self._probe_all(SANITY_TOKENS):
            # Known passes came from an earlier run; start again from the bottom.
            below = [SANITY_TOKENS]
        if not below:
            self.good = None
            self.state.work_good = None
            self.state.failed = (
                f"the model failed a repeated probe at {self.measured.get(good, good)} "
                "tokens and no smaller size passed every trial"
            )
            return False
        self.good = max(below)
        self.state.work_good = self.measured[self.good]
        return True

    def _probe(self, target: int, trial: int) -> ProbeOutcome:
        """Probe with the ``trial``-th needle counted from the lead one."""
        return self.prober.probe(target, (trial + self.lead) % self.needles)

    def _probe_all(self, target: int) -> Optional[bool]:
        """Probe ``target`` with the first needle, and with all once ``strict``."""
        outcome = self._probe(target, 0)
        if not self.strict:
            return self._judge(target, outcome)
        if not outcome.fits:
            return self._judge(target, outcome)
        if not outcome.ok:
            return self._judge(target, outcome)
        self.measured[target] = outcome.tokens
        confirmed = self._confirm(target)
        if confirmed:
            self._pass(target, outcome.tokens)
        elif confirmed is None:
            self.cap = target if self.cap is None else min(self.cap, target)
        else:
            self._fail(target)
        return confirmed

    def _confirm(self, target: int) -> Optional[bool]:
        """Probe ``target`` with the other trials' needles: True all passed, False one
        failed, None one did not fit this instance.

        Needles of one length count a little differently (1-2% with a real
        tokenizer), so each is brought to the size the first needle was counted at:
        longer or shorter by the difference, a cheap extension or cut of the prefix
        just cached. The size shown is the first needle's, or the smallest any needle
        passed at when one stayed more than ``tolerance`` below it.
        """
        if target in self.confirmed:
            return True
        size = self.measured[target]
        low = size
        for trial in range(1, self.trials):
            outcome = self._match(target, trial, size)
            if not outcome.fits:
                return None
            if not outcome.ok:
                return False
            low = min(low, outcome.tokens)
        self.confirmed[target] = size if low >= size - self.tolerance else low
        return True

    def _match(self, asked: int, trial: int, size: int, exact: bool = False) -> ProbeOutcome:
        """Probe with needle ``trial`` at about ``size`` of the server's tokens (no
        fewer than ``tolerance`` below it, or none fewer when ``exact``). Each nudge
        costs only the tokens added to, or nothing for those cut from, the prefix the
        server has just cached; one that overshoots the instance is not taken."""
        outcome = self._probe(asked, trial)
        ceiling = self.prober.ceiling()
        short = 0 if exact else self.tolerance
        best: Optional[ProbeOutcome] = None  # the longest pass that fit
        for _ in range(REFITS):
            if outcome.ok and outcome.fits and (best is None or outcome.tokens > best.tokens):
                best = outcome
            if not outcome.fits:
                if not (self.final or exact) or ceiling is None:
                    break  # a larger instance will judge this needle
                # Aim a little below the ceiling: a count moves by whole words.
                over = outcome.tokens - ceiling if outcome.failure != "truncated" else 0
                step = -(over + max(2, short // 2) if over > 0 else max(1, asked // REFIT_DIV))
            elif outcome.ok and outcome.tokens < size - short:
                step = size - outcome.tokens  # passed short of the size: extend
            elif not outcome.ok and outcome.tokens > size:
                step = size - outcome.tokens  # failed past the size: cut
            else:
                break
            asked += step
            outcome = self._probe(asked, trial)
        if outcome.ok and outcome.fits and (best is None or outcome.tokens > best.tokens):
            best = outcome
        return best if best is not None and (outcome.ok or not outcome.fits) else outcome
