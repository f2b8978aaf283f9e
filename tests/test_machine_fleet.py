"""machine_fleet: typical models on one machine, and the search's accuracy on them."""

from __future__ import annotations

import math

import pytest

from lmstrix import Client, find_context_limit
from lmstrix.testing import FakeLMStudio, machine_fleet


def test_limits_follow_the_memory_budget() -> None:
    small, large = machine_fleet(12), machine_fleet(24)
    assert len(large) >= len(small) >= 10
    for model in large:
        assert model.working_context <= model.loadable_context <= model.declared_context
    by_key = {m.key: m for m in small}
    for model in large:
        if model.key in by_key:
            assert model.loadable_context >= by_key[model.key].loadable_context
    assert any(m.loadable_context < m.declared_context for m in large)
    assert any(m.loadable_context == m.declared_context for m in small)
    assert any(m.auto_fit for m in large)
    assert any(m.crash_on_overload for m in large)


@pytest.mark.parametrize("memory_gib", [12.0, 16.0])
def test_search_is_accurate_on_a_machine_fleet(memory_gib: float) -> None:
    fleet = machine_fleet(memory_gib)
    resolution = 1024
    with FakeLMStudio(models=fleet) as fake, Client(fake.base_url) as client:
        for model in fleet:
            report = find_context_limit(client, model.key, trials=1, resolution=resolution)
            assert report.status == "done", (model.key, report.reason)
            assert report.loadable_context is not None
            assert report.working_context is not None
            assert report.loadable_context <= model.loadable_context
            assert model.loadable_context - report.loadable_context <= resolution
            assert report.working_context <= model.working_context
            reachable = min(model.working_context, report.loadable_context - 24)
            assert reachable - report.working_context <= resolution, model.key
            bound = math.ceil(math.log2((model.declared_context - 2048) / resolution)) + 3
            assert report.loads <= bound
