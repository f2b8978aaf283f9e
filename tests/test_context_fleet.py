"""The context search with its defaults (trials 3) on the whole test fleet, five seeds.

Issue 12's first must-show: against ``lmstrix.testing`` with the realistic tokenizer
(the simulator's default), every reported limit is within ``resolution`` of the truth
and never above it; noisy models are only promised never to be above it.
"""

from __future__ import annotations

from typing import Iterator

import pytest
from test_context import MIN_CONTEXT, assert_true_limits, load_budget

from lmstrix.client import Client
from lmstrix.context import find_context_limit
from lmstrix.testing import FakeLMStudio, SimModel, test_fleet

FLEET = [m for m in test_fleet() if m.type == "llm"]
SEEDS = (11, 23, 37, 41, 59)


def test_the_fleet_is_the_one_the_issue_asks_for() -> None:
    assert len(FLEET) >= 20
    assert all(m.tokenizer == "words" for m in FLEET)  # the realistic tokenizer
    kinds = {
        "auto-fit": any(m.auto_fit for m in FLEET),
        "crash-on-load": any(m.crash_on_overload for m in FLEET),
        "truncating": any(m.truncates for m in FLEET),
        "broken": any(m.broken for m in FLEET),
        "noisy": any(m.noise > 0 for m in FLEET),
        "declared < min": any(m.declared_context < MIN_CONTEXT for m in FLEET),
    }
    assert all(kinds.values()), kinds


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def seeded(request: pytest.FixtureRequest) -> Iterator[Client]:
    with FakeLMStudio(models=FLEET, seed=request.param, time_scale=0.0) as server:
        with Client(server.base_url, max_retries=0) as client:
            client.seed = request.param  # type: ignore[attr-defined]
            yield client


@pytest.mark.parametrize("model", FLEET, ids=[m.key for m in FLEET])
def test_default_trials_find_the_truth(seeded: Client, model: SimModel) -> None:
    seed = int(getattr(seeded, "seed"))  # noqa: B009
    report = find_context_limit(seeded, model.key, seed=seed)  # the defaults: trials 3
    assert report.loads <= load_budget(model)
    assert_true_limits(report, model)
