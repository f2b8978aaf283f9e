"""`lmstrix._threads.map_in_threads`: results in order, a bound on threads, every item run
before an error is raised, and lost or refused threads leave no item behind."""

from __future__ import annotations

import threading
import time
from typing import List

import pytest
from _threads import threading_losing, threading_refusing

from lmstrix import _threads
from lmstrix._threads import map_in_threads


def test_results_come_in_the_order_of_the_items() -> None:
    def slow_first(n: int) -> int:
        time.sleep(0.02 * (5 - n))  # the first items finish last
        return n * n

    assert map_in_threads(slow_first, range(5)) == [0, 1, 4, 9, 16]
    assert map_in_threads(slow_first, []) == []


def test_no_more_threads_than_workers_and_their_names() -> None:
    running, most, names = [0], [0], set()
    lock = threading.Lock()

    def count(n: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            names.add(threading.current_thread().name)
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return n

    assert map_in_threads(count, range(12), workers=3, name="t") == list(range(12))
    assert most[0] <= 3 and names <= {"t-0", "t-1", "t-2"}


def test_every_item_runs_then_the_first_error_in_item_order_is_raised() -> None:
    done: List[int] = []

    def fails_on_odd(n: int) -> int:
        if n % 2:
            time.sleep(0.05 if n == 1 else 0)  # item 3 fails before item 1
            raise ValueError(f"item {n}")
        done.append(n)
        return n

    with pytest.raises(ValueError, match="item 1"):
        map_in_threads(fails_on_odd, range(6), workers=2)
    assert sorted(done) == [0, 2, 4]


def test_threads_that_never_ran_leave_their_items_to_the_others_or_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller = threading.current_thread()
    ran_in: List[threading.Thread] = []

    def where(n: int) -> int:
        ran_in.append(threading.current_thread())
        return -n

    losing = threading_losing(2)
    monkeypatch.setattr(_threads, "threading", losing)
    assert map_in_threads(where, range(6), workers=3) == [0, -1, -2, -3, -4, -5]
    assert len(losing.lost) == 2 and caller not in ran_in  # the third thread took all

    ran_in.clear()
    monkeypatch.setattr(_threads, "threading", threading_losing(99))
    assert map_in_threads(where, range(4)) == [0, -1, -2, -3]
    assert ran_in == [caller] * 4  # no thread ran: the caller did everything


def test_threads_that_cannot_start_leave_their_items_to_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_threads, "threading", threading_refusing())
    assert map_in_threads(lambda n: n + 1, range(3)) == [1, 2, 3]
