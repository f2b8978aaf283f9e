"""`find_context_limits`: several servers searched at once, one search at a time on each."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _threads import threading_losing

import lmstrix
from lmstrix import _threads
from lmstrix.context import find_context_limits
from lmstrix.testing import FakeLMStudio, SimModel


def fleet(loadable: int) -> list:  # type: ignore[type-arg]
    return [
        SimModel("m/one", declared_context=16384, loadable_context=loadable, load_base_s=0.5),
        SimModel("m/two", declared_context=8192, load_base_s=0.5),
        SimModel("m/embed", declared_context=2048, type="embedding"),
    ]


def test_two_servers_run_at_once_and_keep_their_own_limits(tmp_path: Path) -> None:
    registry = lmstrix.Registry(tmp_path / "registry.json")
    with FakeLMStudio(fleet(12000), time_scale=0.05) as a, FakeLMStudio(
        fleet(6000), time_scale=0.05
    ) as b:
        url_a, url_b = a.base_url, b.base_url
        clients = [lmstrix.Client(url_a), lmstrix.Client(url_b)]
        seen, steps = [], []
        started = time.perf_counter()
        results = find_context_limits(
            clients,
            registry=registry,
            trials=1,
            seed=1,
            on_report=seen.append,
            on_progress=steps.append,
        )
        parallel_s = time.perf_counter() - started
        started = time.perf_counter()  # the same searches one server after the other
        for client in clients:
            find_context_limits(
                [client], registry=lmstrix.Registry(tmp_path / "seq.json"), trials=1, seed=1
            )
        sequential_s = time.perf_counter() - started
        for client in clients:
            client.close()
        # Both servers were busy at the same time: each one's loads overlap the other's.
        assert a.counters.loads > 0 and b.counters.loads > 0
    assert set(results) == {url_a, url_b}
    assert {step.server for step in steps} == {url_a, url_b}  # each step names its server
    for result in results.values():
        assert result.error is None
        assert [r.model for r in result.reports] == ["m/one", "m/two"]  # no embedding model
    assert len(seen) == 4
    one_a = registry.get("m/one", server=url_a)
    one_b = registry.get("m/one", server=url_b)
    assert one_a is not None and one_b is not None
    assert one_a.loadable_context is not None and one_b.loadable_context is not None
    assert 12000 - 1024 <= one_a.loadable_context <= 12000
    assert 6000 - 1024 <= one_b.loadable_context <= 6000
    # Reported, not asserted (tests never assert on wall-clock time).
    print(
        f"\ntwo servers at once: {parallel_s:.2f} s; one after the other: {sequential_s:.2f} s "
        f"({parallel_s / sequential_s:.2f}x)"
    )


def test_skip_tested_and_a_server_that_fails(tmp_path: Path) -> None:
    registry = lmstrix.Registry(tmp_path / "registry.json")
    with FakeLMStudio(fleet(12000)) as a:
        url = a.base_url
        client = lmstrix.Client(url)
        first = find_context_limits([client], ["m/two"], registry=registry, trials=1)
        assert [r.model for r in first[url].reports] == ["m/two"]
        again = find_context_limits([client], registry=registry, trials=1, skip_tested=True)
        assert [r.model for r in again[url].reports] == ["m/one"]
        client.close()
    gone = lmstrix.Client("http://127.0.0.1:9", max_retries=0)
    result = find_context_limits([gone], registry=registry)
    assert isinstance(result["http://127.0.0.1:9"].error, lmstrix.APIConnectionError)
    gone.close()


def test_a_server_whose_thread_never_ran_is_searched_in_the_callers_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    losing = threading_losing(1)
    monkeypatch.setattr(_threads, "threading", losing)  # the simulator's threads run
    with FakeLMStudio(fleet(12000), time_scale=0.05) as fake:
        url = fake.base_url
        with lmstrix.Client(url) as client:
            found = find_context_limits(
                iter([client]), ["m/two"], registry=lmstrix.Registry(tmp_path / "r.json")
            )
    search = found[url]
    assert losing.lost == ["lmstrix-search-0"]
    assert search.error is None and [r.model for r in search.reports] == ["m/two"]
