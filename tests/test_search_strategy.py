"""The pure context-search strategy (`lmstrix.context._strategy`): fake probers, hidden truths."""

from __future__ import annotations

import hashlib
import math
from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lmstrix.context._strategy import (
    SANITY_TOKENS,
    Bounds,
    LoadOutcome,
    ProbeOutcome,
    SearchResult,
    _split,
    after_load,
    after_probe,
    run_search,
)

ROOM = 24  # answer room the fake keeps free above a prompt (like context.ANSWER_TOKENS)
FLOOR = 2048
RESOLUTIONS = st.sampled_from([256, 512, 1024])
TRIALS = st.sampled_from([1, 3])
CALL_LIMIT = 5000  # a search that makes more calls than this does not terminate


class FakeProber:
    """A model with hidden limits: loadable ``loadable`` and working ``working``.

    ``auto_fit``: loads above the limit "succeed" at the largest multiple of 256 below
    it (reported as a failure with ``applied``). ``noise``: a probe in the band
    ``(working * (1 - band), working]`` fails with that probability, deterministic per
    (size, trial). ``n_ctx``: an instance that is already loaded (no load endpoint);
    probes above ``n_ctx - ROOM`` fail with an overflow. ``flaky_trials``: trials >= 1
    fail at every size above this one (trial 0 is the truth). ``refuse``: failed loads
    are guardrail refusals (cheap) rather than crashes. ``jitter``: needles count
    differently (as with a real tokenizer): trial 1 ``jitter`` longer than asked,
    trial 2 as much shorter, trial 0 exact. The truth is judged on the count; a count
    above the loaded context is an overflow, one above the ceiling leaves no room for
    the answer: neither fits (``ProbeOutcome.fits``).
    """

    def __init__(
        self,
        loadable: int,
        working: int,
        *,
        auto_fit: bool = False,
        noise: float = 0.0,
        band: float = 0.15,
        n_ctx: Optional[int] = None,
        flaky_trials: Optional[int] = None,
        refuse: bool = False,
        short: int = 0,
        jitter: float = 0.0,
    ) -> None:
        self.jitter = jitter
        self.loadable = loadable
        self.refuse = refuse
        self.short = short
        self.working = working
        self.auto_fit = auto_fit
        self.noise = noise
        self.band = band
        self.n_ctx = n_ctx
        self.flaky_trials = flaky_trials
        self.loaded: Optional[int] = n_ctx
        self.loads = 0
        self.load_sizes: List[int] = []
        self.probes: List[Tuple[int, int, bool]] = []
        self.violations: List[str] = []

    def _tick(self) -> None:
        if self.loads + len(self.probes) > CALL_LIMIT:
            raise AssertionError("the search does not terminate")

    def load(self, size: int) -> LoadOutcome:
        self._tick()
        self.loads += 1
        self.load_sizes.append(size)
        if size <= self.loadable:
            self.loaded = size
            return LoadOutcome(True, size)
        if self.auto_fit:
            self.loaded = max(256, self.loadable // 256 * 256)
            return LoadOutcome(False, self.loaded, "auto_fit")
        self.loaded = None
        return LoadOutcome(False, None, "load_failed", refused=self.refuse)

    def ceiling(self) -> Optional[int]:
        if self.n_ctx is not None or self.loaded is None:
            return None
        return max(1, self.loaded - ROOM)

    def passes(self, tokens: int, trial: int) -> bool:
        """The hidden truth for one probe of ``tokens`` counted tokens (deterministic)."""
        if tokens > self.working:
            return False
        if self.flaky_trials is not None and trial >= 1 and tokens > self.flaky_trials:
            return False
        if self.noise > 0 and tokens > self.working * (1.0 - self.band):
            digest = hashlib.sha256(f"{tokens}:{trial}".encode()).digest()
            return int.from_bytes(digest[:8], "big") / float(1 << 64) >= self.noise
        return True

    def count(self, tokens: int, trial: int) -> int:
        """What the server counts for a probe asked at ``tokens`` with needle ``trial``.

        ``short``: every prompt comes out that many tokens shorter than asked (a probe
        cut at a word, a calibration that is a little off)."""
        factor = 1.0 + self.jitter * (0, 1, -1)[trial % 3]
        return max(1, round(tokens * factor) - self.short)

    def probe(self, tokens: int, trial: int) -> ProbeOutcome:
        self._tick()
        if self.loaded is None:
            self.violations.append(f"probe of {tokens} with nothing loaded")
        counted = self.count(tokens, trial)
        context = self.n_ctx if self.n_ctx is not None else self.loaded
        ceiling = None if context is None else context - ROOM
        if context is not None and counted > context:
            self.probes.append((tokens, trial, False))
            return ProbeOutcome(False, counted, "overflow_error", fits=False)
        ok = self.passes(counted, trial)
        self.probes.append((tokens, trial, ok))
        fits = ceiling is None or counted <= ceiling
        return ProbeOutcome(ok, counted, None if ok else "wrong_answer", fits)


def search(
    fake: FakeProber,
    top: Optional[int],
    *,
    resolution: int = 1024,
    trials: int = 3,
    can_load: bool = True,
    bounds: Optional[Bounds] = None,
) -> SearchResult:
    return run_search(
        fake,
        top=top,
        floor=FLOOR,
        resolution=resolution,
        trials=trials,
        can_load=can_load,
        bounds=bounds,
    )


def load_budget(top: int, resolution: int) -> int:
    span = max(1.0, (top - FLOOR) / resolution)
    return math.ceil(math.log2(span)) + 3


def expected_loadable(fake: FakeProber, top: int) -> Optional[int]:
    """The truth the search should approach, or None when nothing loads."""
    truth = min(fake.loadable, top)
    if truth < min(FLOOR, top) and not fake.auto_fit:
        return None
    return truth


def check_exact(fake: FakeProber, top: int, resolution: int, trials: int) -> SearchResult:
    """Run a search on a noise-free truth and check every promise the strategy makes."""
    result = search(fake, top, resolution=resolution, trials=trials)
    assert not fake.violations
    assert fake.loads <= load_budget(top, resolution)
    truth_l = expected_loadable(fake, top)
    if truth_l is None:
        assert result.status == "failed"
        assert result.loadable is None
        assert result.working is None
        assert "does not load" in result.reason
        return result
    assert result.loadable is not None
    assert result.loadable <= truth_l
    # The working truth as this fake defines it: the model's limit, or the largest
    # prompt the largest loadable instance holds.
    truth_w = min(fake.working, max(1, truth_l - ROOM))
    if truth_w < min(SANITY_TOKENS, max(1, result.loadable - ROOM)):
        # A model that fails the sanity probe stops the search: no more loads.
        assert result.status == "failed"
        assert result.working is None
        assert "smallest probe" in result.reason
        return result
    assert truth_l - resolution <= result.loadable
    assert result.status == "done", result
    assert result.working is not None
    assert truth_w - resolution <= result.working <= truth_w
    if trials > 1:  # every trial passes at the reported size
        assert all(fake.passes(result.working, t) for t in range(trials))
    return result


# ---------------------------------------------------------------------------- tables

EXACT_CASES = [
    # (declared/top, loadable, working, auto_fit, resolution, trials, loads, loadable, working)
    (8192, 8192, 8192, False, 1024, 3, 1, 8192, 8192 - ROOM),
    (8192, 8192, 5000, False, 1024, 3, 1, 8192, None),
    (65536, 37311, 20005, False, 1024, 3, None, None, None),
    (131072, 33000, 30001, True, 1024, 3, 1, 32768, None),  # the auto-fit is the answer
    (32768, 9999, 6500, True, 256, 1, None, 9984, None),
    (16384, 16383, 16383, False, 512, 3, None, None, None),
    (24576, 24576, 17777, False, 256, 3, 1, 24576, None),
    (262144, 262144, 200000, False, 1024, 3, 1, 262144, None),
    (8192, 2049, 2047, False, 1024, 3, None, 2048, None),
    (1024, 1024, 1024, False, 1024, 3, 1, 1024, 1024 - ROOM),
    (2000, 2000, 1900, False, 256, 3, 1, 2000, None),
    (32768, 32768, 1500, False, 1024, 3, 1, 32768, None),
]


@pytest.mark.parametrize(
    ("top", "loadable", "working", "auto_fit", "resolution", "trials", "loads", "want_l", "want_w"),
    EXACT_CASES,
)
def test_exact_truths(
    top: int,
    loadable: int,
    working: int,
    auto_fit: bool,
    resolution: int,
    trials: int,
    loads: Optional[int],
    want_l: Optional[int],
    want_w: Optional[int],
) -> None:
    fake = FakeProber(loadable, working, auto_fit=auto_fit)
    result = check_exact(fake, top, resolution, trials)
    assert fake.load_sizes[0] == top  # the top is always tried first
    if loads is not None:
        assert fake.loads == loads
    if want_l is not None:
        assert result.loadable == want_l
    if want_w is not None:
        assert result.working == want_w


def test_loadable_below_floor_fails() -> None:
    fake = FakeProber(1500, 1500)
    result = search(fake, 32768)
    assert result == SearchResult(None, None, "failed", result.reason)
    assert "2048" in result.reason
    assert fake.load_sizes[-1] == FLOOR


def test_auto_fit_below_floor_still_finds_the_applied_size() -> None:
    fake = FakeProber(1500, 1000, auto_fit=True)
    result = search(fake, 32768, resolution=256)
    assert result.status == "done"
    assert result.loadable == 1280
    assert result.working is not None
    assert 1000 - 256 <= result.working <= 1000


def test_broken_model_fails_at_the_sanity_probe() -> None:
    fake = FakeProber(16384, 0)
    result = search(fake, 16384)
    assert result.status == "failed"
    assert "smallest probe" in result.reason
    assert "wrong_answer" in result.reason
    assert result.loadable == 16384
    assert result.working is None
    assert fake.loads == 1
    assert len(fake.probes) == 1  # a wrong answer is about the model: no other needle


def test_working_search_reuses_the_instance_and_needs_no_reload() -> None:
    """The working search runs on each successful load: no load after the last good one."""
    fake = FakeProber(37311, 20005)
    result = search(fake, 65536)
    good_loads = [s for s in fake.load_sizes if s <= fake.loadable]
    assert max(good_loads) == result.loadable
    # probes grow from the sanity size by doubling before the first failure
    first_sizes = [p[0] for p in fake.probes[:4]]
    assert first_sizes == [256, 512, 1024, 2048]


def test_refinement_uses_the_other_trials_only_at_the_boundary() -> None:
    fake = FakeProber(65536, 20005)
    result = search(fake, 65536, trials=3)
    extra = [p for p in fake.probes if p[1] > 0]
    assert result.working is not None
    assert {p[0] for p in extra} == {result.working}
    assert len(extra) == 2


def test_flaky_boundary_backs_off_to_a_size_every_trial_passes() -> None:
    """Trial 0 passes up to 20,000 but the other needles only up to 9,000."""
    fake = FakeProber(32768, 20000, flaky_trials=9000)
    result = search(fake, 32768, resolution=1024, trials=3)
    assert result.status == "done"
    assert result.working is not None
    assert 9000 - 1024 <= result.working <= 9000
    assert all(fake.passes(result.working, t) for t in range(3))


def test_flaky_everywhere_fails() -> None:
    """Other needles fail even at the sanity size: no size passes every trial."""
    fake = FakeProber(8192, 8192, flaky_trials=100)
    result = search(fake, 8192, trials=3)
    assert result.status == "failed"
    assert "repeated probe" in result.reason
    assert result.working is None


def test_flaky_at_the_ceiling_during_growth() -> None:
    """The instance's ceiling is reached while growing and the other needles fail there."""
    fake = FakeProber(8192, 8192, flaky_trials=6000)
    result = search(fake, 8192, trials=3)
    assert result.status == "done"
    assert result.working is not None
    assert 6000 - 1024 <= result.working <= 6000


def test_single_trial_takes_the_first_needle_at_its_word() -> None:
    fake = FakeProber(8192, 8192, flaky_trials=100)
    result = search(fake, 8192, trials=1)
    assert result.status == "done"
    assert result.working == 8192 - ROOM
    assert all(p[1] == 0 for p in fake.probes)


def test_top_below_floor_loads_the_top() -> None:
    fake = FakeProber(1024, 1024)
    result = search(fake, 1024)
    assert result.loadable == 1024
    assert fake.load_sizes == [1024]


def test_load_search_needs_a_top() -> None:
    with pytest.raises(ValueError, match="top"):
        search(FakeProber(8192, 8192), None)


def test_resume_from_bounds_needs_fewer_loads() -> None:
    fresh = FakeProber(37311, 20005)
    expected = search(fresh, 65536)
    resumed = FakeProber(37311, 20005)
    bounds = Bounds(load_good=32768, load_bad=49152, work_good=16000, work_bad=24000)
    result = search(resumed, 65536, bounds=bounds)
    assert resumed.loads < fresh.loads
    assert expected.loadable is not None
    assert result.loadable is not None
    assert min(result.loadable, expected.loadable) >= 37311 - 1024
    assert max(result.loadable, expected.loadable) <= 37311
    assert result.working is not None
    assert 20005 - 1024 <= result.working <= 20005
    assert bounds.load_good == result.loadable  # the bounds object receives the progress


@pytest.mark.parametrize(
    ("loadable", "top", "bounds"),
    [
        # the loads are settled: nothing is loaded, the working search is not resumed
        (8192, 8192, Bounds(load_good=8192, work_good=512)),
        # every load of the resumed run fails: the working search never starts
        (2048, 2305, Bounds(load_good=2048)),
    ],
)
def test_resume_with_no_successful_load_still_searches_the_working_limit(
    loadable: int, top: int, bounds: Bounds
) -> None:
    fake = FakeProber(loadable, loadable)
    result = search(fake, top, resolution=256, bounds=bounds)
    assert result.status == "done"
    assert result.working is not None
    assert loadable - ROOM - 256 <= result.working
    assert fake.load_sizes[-1] == loadable  # one load at the known limit finishes the search


def worst_case_loads(top: int, resolution: int) -> int:
    """The top, then the fewest loads that settle ``(top - floor) / resolution`` buckets
    plus "nothing loads" in the worst case."""
    if top <= FLOOR:
        return 1
    return 1 + math.ceil(math.log2((top - FLOOR) / resolution + 1))


@settings(deadline=None, max_examples=300)
@given(
    top=st.integers(2049, 262144),
    share=st.floats(0.0, 1.0),
    resolution=RESOLUTIONS,
    refuse=st.booleans(),
)
def test_property_loads_never_exceed_the_worst_case_bound(
    top: int, share: float, resolution: int, refuse: bool
) -> None:
    """Whatever way the splits lean, no truth needs more loads than a balanced search."""
    loadable = int(FLOOR * 0.5 + share * (top - FLOOR * 0.5))
    fake = FakeProber(loadable, 300, refuse=refuse)  # working limit found on any instance
    search(fake, top, resolution=resolution, trials=1)
    assert fake.loads <= worst_case_loads(top, resolution)


def test_splits_lean_high_after_refusals_and_low_after_crashes() -> None:
    refusing = FakeProber(37311, 20005, refuse=True)
    crashing = FakeProber(37311, 20005)
    a = search(refusing, 65536, trials=1)
    b = search(crashing, 65536, trials=1)
    assert refusing.load_sizes[0] == crashing.load_sizes[0] == 65536
    assert refusing.load_sizes[1] > crashing.load_sizes[1]
    # Both keep the balanced worst case and find the same limit within resolution.
    for fake, result in ((refusing, a), (crashing, b)):
        assert fake.loads <= worst_case_loads(65536, 1024)
        assert result.loadable is not None
        assert 37311 - 1024 <= result.loadable <= 37311


@pytest.mark.parametrize("loadable", [40960, 38982, 45961])
def test_last_load_leans_to_success_while_the_working_search_waits(loadable: int) -> None:
    """Models that answer up to their full context: the working search waits for the
    instance at the loadable limit; the last load aims low, here succeeds, and the
    working search finishes on it without a reload."""
    fake = FakeProber(loadable, loadable, refuse=True)
    result = search(fake, 65536, trials=1)
    assert result.loadable is not None
    assert loadable - 1024 <= result.loadable <= loadable
    assert len(fake.load_sizes) == len(set(fake.load_sizes))  # no size loaded twice
    assert fake.load_sizes[-1] == result.loadable
    assert result.working == result.loadable - ROOM


@pytest.mark.parametrize(
    ("good", "bad", "lean", "pending", "want"),
    [
        (4096, 36864, 0, False, 20480),  # 32 buckets: the middle, exactly
        (4096, 36000, 1, False, 20480),  # 31 buckets: at most 16 may lie to the left
        (4096, 36000, -1, False, 19616),  # ... and at most 16 to the right
        (30000, 32048, 1, True, 31024),  # the last load, working search waiting: lowest
        (30000, 32048, 1, False, 31024),  # two buckets: only one size keeps it to one load
        # 192 buckets: any size in 68,928..135,168 keeps 8 loads; the lean moves a
        # tenth of the interval from the middle, not to the edge of that range
        (4096, 200000, 0, False, 102048),
        (4096, 200000, 1, False, 121638),
        (4096, 200000, -1, False, 82457),
        (None, 8192, 0, False, 4608),  # unverified floor: one more bucket below it
        (None, 2900, 1, False, 2048),  # the floor itself settles "nothing loads"
    ],
)
def test_split_keeps_the_worst_case_and_leans_within_it(
    good: Optional[int], bad: int, lean: int, pending: bool, want: int
) -> None:
    assert _split(good, bad, FLOOR, 1024, lean, pending) == want


def test_a_probe_that_comes_up_short_is_topped_up_to_the_ceiling() -> None:
    fake = FakeProber(8192, 8192, short=3)
    result = search(fake, 8192, trials=1)
    assert result.working == 8192 - ROOM
    asked = [p[0] for p in fake.probes]
    assert asked[-2:] == [8192 - ROOM, 8192 - ROOM + 3]  # one nudge of three tokens


class Lumpy(FakeProber):
    """Prompts come out 3 tokens short, and 5 tokens long once asked past the ceiling
    (a probe that can only end on whole words, say)."""

    def probe(self, tokens: int, trial: int) -> ProbeOutcome:
        outcome = super().probe(tokens, trial)
        ceiling = self.ceiling()
        over = ceiling is not None and tokens > ceiling
        counted = tokens + 5 if over else tokens - 3
        fits = ceiling is None or counted <= ceiling
        return ProbeOutcome(outcome.ok, counted, outcome.failure, fits)


def test_a_nudge_that_would_overshoot_the_ceiling_is_not_taken() -> None:
    fake = Lumpy(8192, 8192)
    result = search(fake, 8192, trials=1)
    assert result.working == 8192 - ROOM - 3  # the last probe that fit
    asked = [p[0] for p in fake.probes]
    assert asked[asked.index(8192 - ROOM) + 1] == 8192 - ROOM + 3  # the nudge, not taken


def test_resume_with_a_failure_at_the_floor_stops_without_loading() -> None:
    fake = FakeProber(8192, 8192)
    result = search(fake, 32768, bounds=Bounds(load_bad=FLOOR))
    assert result.status == "failed"
    assert "does not load even at 2048" in result.reason
    assert fake.loads == 0


@pytest.mark.parametrize(
    ("bounds", "first"),
    [
        # resumed bounds and no failure seen in this run: the balanced middle
        (Bounds(load_good=4096, load_bad=36864), 20480),
        # the floor is unverified: it counts as one more bucket below the range
        (Bounds(load_bad=8192), 4608),
    ],
)
def test_resumed_split_without_failure_kinds_takes_the_middle(bounds: Bounds, first: int) -> None:
    fake = FakeProber(6000, 300)
    search(fake, 65536, trials=1, bounds=bounds)
    assert fake.load_sizes[0] == first


# -------------------------------------------------------------- without a load endpoint


@pytest.mark.parametrize(
    ("n_ctx", "working", "want"),
    [(4096, 4096, 4096 - ROOM), (32768, 12000, 12000), (4096, 2000, 2000), (300, 300, 276)],
)
def test_no_load_endpoint_searches_the_loaded_instance(n_ctx: int, working: int, want: int) -> None:
    fake = FakeProber(10**9, working, n_ctx=n_ctx)
    result = search(fake, None, can_load=False, resolution=256)
    assert fake.loads == 0
    assert result.status == "done"
    assert result.loadable is None
    assert result.working is not None
    assert want - 256 <= result.working <= want


def test_no_load_endpoint_broken_model_fails() -> None:
    fake = FakeProber(10**9, 0, n_ctx=4096)
    result = search(fake, None, can_load=False)
    assert result.status == "failed"
    assert result.working is None
    assert result.loadable is None


# ---------------------------------------------------------------------------- properties


@st.composite
def truths(draw: st.DrawFn, min_loadable: int = 256) -> Tuple[int, int, int]:
    """(declared, loadable, working); ``min_loadable`` FLOOR gives models that load at
    the floor, so a registry can hold a good bound for them."""
    declared = draw(st.integers(max(1024, min_loadable + 1), 262144))
    loadable = draw(st.integers(min_loadable, declared))
    working = draw(st.integers(0, loadable))
    return declared, loadable, working


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(truth=truths(), resolution=RESOLUTIONS, trials=TRIALS, auto_fit=st.booleans())
def test_property_exact_truths(
    truth: Tuple[int, int, int], resolution: int, trials: int, auto_fit: bool
) -> None:
    declared, loadable, working = truth
    check_exact(FakeProber(loadable, working, auto_fit=auto_fit), declared, resolution, trials)


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    truth=truths(),
    resolution=RESOLUTIONS,
    noise=st.floats(0.05, 0.7),
    band=st.floats(0.05, 0.5),
)
def test_property_noisy_truths_never_overstate(
    truth: Tuple[int, int, int], resolution: int, noise: float, band: float
) -> None:
    declared, loadable, working = truth
    fake = FakeProber(loadable, working, noise=noise, band=band)
    result = search(fake, declared, resolution=resolution, trials=3)
    assert not fake.violations
    assert fake.loads <= load_budget(declared, resolution)
    truth_l = expected_loadable(fake, declared)
    if truth_l is None:
        assert result.status == "failed"
        assert result.loadable is None
        return
    assert result.loadable is not None
    assert result.loadable <= truth_l
    if result.status == "done":
        # noise touches prompts only: the loadable limit is still exact
        assert truth_l - resolution <= result.loadable
        assert result.working is not None
        assert result.working <= working
        assert all(fake.passes(result.working, t) for t in range(3))
    else:  # no size passed every trial: the search stops where it is
        assert result.working is None
        assert result.reason


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_ctx=st.integers(300, 262144),
    working=st.integers(0, 262144),
    resolution=RESOLUTIONS,
    trials=TRIALS,
)
def test_property_no_load_endpoint(n_ctx: int, working: int, resolution: int, trials: int) -> None:
    fake = FakeProber(10**9, working, n_ctx=n_ctx)
    result = search(fake, None, can_load=False, resolution=resolution, trials=trials)
    assert fake.loads == 0
    assert result.loadable is None
    truth_w = min(working, n_ctx - ROOM)
    if truth_w < SANITY_TOKENS:
        assert result.status == "failed"
        assert result.working is None
        return
    assert result.status == "done"
    assert result.working is not None
    assert truth_w - resolution <= result.working <= truth_w


@settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    truth=truths(min_loadable=FLOOR),
    resolution=RESOLUTIONS,
    good=st.floats(0.0, 1.0),
    bad=st.floats(0.0, 1.0),
)
def test_property_resume_from_true_bounds(
    truth: Tuple[int, int, int], resolution: int, good: float, bad: float
) -> None:
    """Bounds consistent with the truth (as a registry would hold) never cost extra loads."""
    declared, loadable, working = truth
    load_good = FLOOR + int((loadable - FLOOR) * good)
    load_bad: Optional[int] = None
    if loadable < declared:
        load_bad = loadable + 1 + int((declared - loadable - 1) * bad)
    # bounds that leave no load to do: see test_resume_with_finished_loads_*
    assume(load_good < declared and (load_bad is None or load_bad - load_good > resolution))
    fresh = FakeProber(loadable, working)
    expected = search(fresh, declared, resolution=resolution)
    fake = FakeProber(loadable, working)
    bounds = Bounds(load_good=load_good, load_bad=load_bad)
    result = search(fake, declared, resolution=resolution, bounds=bounds)
    assert fake.loads <= load_budget(declared, resolution)
    assert result.loadable is not None
    assert result.loadable <= loadable
    if expected.status == "done":
        assert fake.loads <= fresh.loads + 1
        assert result.status == "done"
        assert loadable - resolution <= result.loadable
    if result.status == "done":
        assert result.working is not None
        assert result.working <= working


def test_noise_is_deterministic() -> None:
    fake = FakeProber(32768, 16000, noise=0.5)
    seen: Dict[Tuple[int, int], bool] = {}
    for size in range(13000, 16001, 97):
        for trial in range(3):
            seen[(size, trial)] = fake.passes(size, trial)
    assert any(seen.values())
    assert not all(seen.values())
    assert all(fake.passes(s, t) == ok for (s, t), ok in seen.items())


# ------------------------------------------------- needles that count differently (issue 12)


def test_an_overflow_on_a_small_instance_is_no_verdict() -> None:
    """The second needle tokenizes longer: at the first instance's ceiling it overflows.
    That is no failure of the model: the search goes on on the larger instance."""
    fake = FakeProber(37311, 37311, jitter=0.02, refuse=True)
    result = search(fake, 65536, trials=3)
    assert result.status == "done"
    assert result.working is not None
    assert 37311 - ROOM - 1024 <= result.working <= 37311 - ROOM
    assert result.loadable is not None
    bounds = Bounds()
    search(FakeProber(37311, 37311, jitter=0.02, refuse=True), 65536, bounds=bounds)
    assert bounds.work_bad is None  # no prompt failure is the model's


@pytest.mark.parametrize("jitter", [0.005, 0.02])
def test_confirming_needles_are_nudged_to_the_first_needles_count(jitter: float) -> None:
    fake = FakeProber(65536, 30001, jitter=jitter)
    result = search(fake, 65536, trials=3)
    assert result.working is not None
    assert 30001 - 1024 <= result.working <= 30001
    # one pass of each needle near the reported size; no trial-wide bisection
    assert fake.loads == 1
    extra = [p for p in fake.probes if p[1] > 0]
    assert len(extra) <= 2 * 3


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    truth=truths(),
    resolution=RESOLUTIONS,
    jitter=st.floats(0.0, 0.03),
    auto_fit=st.booleans(),
)
def test_property_default_trials_with_needle_jitter(
    truth: Tuple[int, int, int], resolution: int, jitter: float, auto_fit: bool
) -> None:
    """Trials 3, needles counting up to 3% apart: limits within resolution, never above,
    and the recorded prompt bounds stay ordered (good < bad)."""
    declared, loadable, working = truth
    fake = FakeProber(loadable, working, auto_fit=auto_fit, jitter=jitter)
    bounds = Bounds()
    result = search(fake, declared, resolution=resolution, trials=3, bounds=bounds)
    assert not fake.violations
    assert fake.loads <= load_budget(declared, resolution)
    if bounds.work_good is not None and bounds.work_bad is not None:
        assert bounds.work_good < bounds.work_bad
    truth_l = expected_loadable(fake, declared)
    if truth_l is None:
        assert result.status == "failed"
        return
    assert result.loadable is not None
    assert result.loadable <= truth_l
    truth_w = min(working, max(1, truth_l - ROOM))
    if result.status == "failed":
        # only a model that fails the smallest probe (of any needle's count) may stop
        assert truth_w < SANITY_TOKENS * (1 + jitter) + ROOM
        return
    assert truth_l - resolution <= result.loadable
    assert result.working is not None
    assert result.working <= truth_w
    assert truth_w - resolution <= result.working


@pytest.mark.parametrize(
    ("good", "bad", "outcome", "want"),
    [
        (1000, None, ProbeOutcome(True, 2010), (2010, None)),
        (1000, 1500, ProbeOutcome(True, 2010), (2010, None)),  # a pass clears bad
        (1000, None, ProbeOutcome(False, 805, "wrong_answer"), (None, 805)),
        (1000, 3000, ProbeOutcome(False, 2004, "wrong_answer"), (1000, 2004)),
        (1000, 3000, ProbeOutcome(False, 4100, "overflow_error", fits=False), (1000, 3000)),
    ],
)
def test_after_probe_keeps_bounds_ordered(
    good: Optional[int],
    bad: Optional[int],
    outcome: ProbeOutcome,
    want: Tuple[Optional[int], Optional[int]],
) -> None:
    assert after_probe(good, bad, outcome) == want


@pytest.mark.parametrize(
    ("good", "bad", "size", "outcome", "want"),
    [
        (4096, 8192, 16384, LoadOutcome(True, 16384), (16384, None)),  # clears a stale bad
        (8192, None, 4096, LoadOutcome(False), (None, 4096)),  # outdates a stale good
        (4096, 8192, 6144, LoadOutcome(False), (4096, 6144)),
    ],
)
def test_after_load_keeps_bounds_ordered(
    good: Optional[int],
    bad: Optional[int],
    size: int,
    outcome: LoadOutcome,
    want: Tuple[Optional[int], Optional[int]],
) -> None:
    assert after_load(good, bad, size, outcome) == want
