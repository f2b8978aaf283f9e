"""`Pool.start()`: background health checks that see servers change without a call, go on
after a check's own error, and come back when their thread was lost."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterator, List

import pytest
from _threads import threading_losing, threading_refusing

from lmstrix import _threads
from lmstrix._poll import poll
from lmstrix.pool import Pool
from lmstrix.testing import FakeLMStudio, SimModel


def model_lists(fake: FakeLMStudio) -> int:
    """How many times the server was asked for its models."""
    return sum(n for path, n in fake.counters.requests.items() if path.endswith("/models"))


def soon(check: Callable[[], bool]) -> bool:
    """Poll ``check`` until true, for 10 s at most (a bound on waiting, not on time)."""
    return poll(check, time.monotonic() + 10.0, first_s=0.005, max_s=0.02)


def pool_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lmstrix-pool"]


@pytest.fixture
def fakes() -> Iterator[List[FakeLMStudio]]:
    started = [FakeLMStudio([SimModel("alpha", declared_context=4096)]).start() for _ in range(2)]
    yield started
    for fake in started:
        fake.stop()


def test_the_checks_see_a_load_and_a_server_gone_with_no_call(fakes: List[FakeLMStudio]) -> None:
    a, b = fakes
    with Pool([a.base_url, b.base_url], max_retries=0, allowed_fails=1, cooldown_s=60) as pool:
        assert pool.start(interval_s=0.02) is pool
        pool.start(interval_s=0.02)  # a second start changes nothing
        assert len(pool_threads()) == 1
        a.preload("alpha")
        assert soon(lambda: pool.status()[0]["loaded"] == ["alpha"])
        b.stop()
        assert soon(lambda: not pool.status()[1]["healthy"])
        assert pool.status()[1]["last_error"]
        assert pool.status()[0]["healthy"]
        assert a.counters.requests.get("/v1/chat/completions", 0) == 0  # no call was made
    assert not pool_threads()  # close() ended the checks


def test_a_check_that_raises_is_logged_and_the_checks_go_on(
    fakes: List[FakeLMStudio], caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = fakes
    with Pool([a.base_url]) as pool:
        member = pool.members[0]
        real = member.models
        broken = [True]

        def models(*, force: bool = False) -> object:
            if broken[0]:
                broken[0] = False
                raise KeyError("a fault of the check itself")
            return real(force=force)

        member.models = models  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="lmstrix"):
            pool.start(interval_s=0.02)
            assert soon(lambda: model_lists(a) >= 2)  # checks after the failed one
        assert pool_threads()[0].is_alive()
    failed = [r for r in caplog.records if "health check of" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is not None


def test_a_thread_that_never_ran_is_replaced_on_the_next_call(
    fakes: List[FakeLMStudio], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = fakes
    losing = threading_losing(1)
    monkeypatch.setattr(_threads, "threading", losing)  # the simulator's threads run
    with Pool([a.base_url]) as pool:
        pool.start(interval_s=0.02)
        assert soon(lambda: losing.lost == ["lmstrix-pool"] and not pool_threads())
        before = model_lists(a)
        with caplog.at_level(logging.WARNING, logger="lmstrix"):
            assert pool.chat("alpha", "What is 1+1?", max_tokens=4).text
        assert any("ended unexpectedly" in r.getMessage() for r in caplog.records)
        assert len(pool_threads()) == 1
        assert soon(lambda: model_lists(a) >= before + 3)  # checking again


def test_a_thread_that_cannot_start_is_tried_again_by_a_call(
    fakes: List[FakeLMStudio], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = fakes
    with Pool([a.base_url]) as pool:
        monkeypatch.setattr(_threads, "threading", threading_refusing())
        with caplog.at_level(logging.WARNING, logger="lmstrix"):
            pool.start(interval_s=0.02)  # no thread, no exception: the pool still works
            assert pool.chat("alpha", "What is 1+1?", max_tokens=4).text
        refused = [r for r in caplog.records if "no health-check thread" in r.getMessage()]
        assert len(refused) == 2  # the start, and the call that tried again
        assert not pool_threads()
        monkeypatch.setattr(_threads, "threading", threading)
        pool.chat("alpha", "What is 1+1?", max_tokens=4)
        assert len(pool_threads()) == 1


def test_bad_interval(fakes: List[FakeLMStudio]) -> None:
    with Pool([fakes[0].base_url]) as pool, pytest.raises(ValueError, match="interval_s"):
        pool.start(interval_s=0)
