"""The working-limit half of :mod:`lmstrix.context._strategy`: prompt lengths on an instance.

Grow the prompt (doubling, one needle and one filler stream so each probe extends the
server's cached prefix), bisect downwards after the first failure, and confirm the
boundary with the other trials' needles, on the final instance only. Pure, like
:mod:`lmstrix.context._strategy`, which drives it across loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from ._strategy import Bounds, ProbeOutcome, Prober

__all__ = ["SANITY_TOKENS", "WorkSearch"]

# The first prompt probe: small, to calibrate characters per token and catch a model
# that answers nothing right before any large prompt is paid for.
SANITY_TOKENS = 256
GROWTH_DOUBLING_BELOW = 8192
# Failures that are the model's answer (as opposed to the server or the connection).
ANSWER_FAILURES = frozenset(("wrong_answer", "empty", "truncated", "overflow_error"))
GROWTH_STEP_DIV = 8
REFITS = 4  # re-sized retries of a needle that missed the size it should confirm
REFIT_DIV = 50  # the cut of a needle that did not fit, when the overshoot is unknown


def _grow(size: int) -> int:
    """The next probe size while growing: doubling while prompts are cheap, then
    smaller steps, since overshooting the working limit costs prefill in proportion."""
    return size * 2 if size < GROWTH_DOUBLING_BELOW else size + size // GROWTH_STEP_DIV


class WorkSearch:
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
