"""Run a function over items in a few threads, and finish what a lost thread left.

A thread can end without running its target: on CPython 3.11 and older, a thread that
starts while another thread runs a Python audit hook inside ``sys.settrace`` dies before
its first line ("Cannot install a trace function while another trace function is being
installed"), and tracers such as coverage call ``sys.settrace`` in every new thread. A
thread can also fail to start (at interpreter shutdown, or at the system's thread limit).
A plain ``ThreadPoolExecutor`` then waits forever for the items no thread is left to
take. :func:`map_in_threads` has its threads take items from one shared list, so a lost
thread's share is taken by the others, and the caller runs whatever is left.
:func:`start_thread` starts a daemon thread, or says why none could start.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable, List, Optional, TypeVar

from ._log import logger

__all__ = ["map_in_threads", "start_thread"]

log = logger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def map_in_threads(
    function: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: Optional[int] = None,
    name: str = "lmstrix",
) -> List[R]:
    """``[function(item) for item in items]``, run in up to ``workers`` threads at once
    (default: one per item), the results in the order of ``items``.

    Every item is run, even when some raise; then the exception of the first item (in
    the order of ``items``) that raised is raised. Threads are named ``{name}-{i}``.
    """
    todo = list(items)
    if not todo:
        return []
    count = len(todo) if workers is None else min(max(1, workers), len(todo))
    results: List[Optional[R]] = [None] * len(todo)
    errors: List[Optional[BaseException]] = [None] * len(todo)
    lock = threading.Lock()
    taken = [0]  # the index of the next item to take

    def take() -> Optional[int]:
        with lock:
            index = taken[0]
            if index >= len(todo):
                return None
            taken[0] = index + 1
            return index

    def work() -> None:
        index = take()
        while index is not None:
            try:
                results[index] = function(todo[index])
            except BaseException as exc:  # handed to the caller below
                errors[index] = exc
            index = take()

    threads = []
    for number in range(count):
        thread = start_thread(work, f"{name}-{number}", "worker", "the caller does its share")
        if thread is None:
            break
        threads.append(thread)
    for thread in threads:
        thread.join()
    work()  # what no thread took: its threads died before their first line, or none started
    for error in errors:
        if error is not None:
            raise error
    return results  # type: ignore[return-value]  # every item ran: no None left of ours


def start_thread(
    target: Callable[[], None], name: str, role: str, instead: str
) -> Optional[threading.Thread]:
    """A started daemon thread named ``name`` running ``target``; ``None`` when no thread
    can start now (at interpreter shutdown, where early CPython 3.12 releases refuse new
    threads, or at the system's limit). Then a warning says ``no {role} thread``, why,
    and ``instead``: what the caller does instead."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    try:
        thread.start()
    except RuntimeError as exc:
        log.warning("%s: no %s thread (%s); %s", name, role, exc, instead)
        return None
    return thread
